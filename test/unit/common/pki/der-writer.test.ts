// The DER writer's encodings against known bytes (X.690): short and long lengths, INTEGER sign padding and
// minimal form, OID base-128 arcs, and RFC 5280's switch from UTCTime to GeneralizedTime in 2050.
import { describe, expect, test } from 'vitest';
import { bitString, contextTag, extension, oid, sequence, smallInteger, time, tlv, unsignedInteger } from '../../../../common/pki/der-writer.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('der-writer', () => {
  test('lengths: short form below 128, long form with the fewest bytes above', () => {
    expect(hex(tlv(0x04, Buffer.alloc(0)))).toBe('0400');
    expect(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4)).toBe('047f');
    expect(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6)).toBe('048180');
    expect(hex(tlv(0x04, Buffer.alloc(256))).slice(0, 8)).toBe('04820100');
    expect(hex(tlv(0x04, Buffer.alloc(65_536))).slice(0, 10)).toBe('0483010000');
  });

  test('INTEGER: leading zeros dropped, a 0x00 added when the high bit is set, zero kept as one byte', () => {
    expect(hex(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])))).toBe('02017f');
    expect(hex(unsignedInteger(Buffer.from([0x80])))).toBe('02020080');
    expect(hex(unsignedInteger(Buffer.from([0x00, 0xff, 0x01])))).toBe('020300ff01');
    expect(hex(unsignedInteger(Buffer.from([0x00, 0x00])))).toBe('020100');
    expect(hex(smallInteger(2))).toBe('020102');
  });

  test('OBJECT IDENTIFIER: first two arcs combined, large arcs in base 128 with continuation bits', () => {
    expect(hex(oid('1.2.840.113549'))).toBe('06062a864886f70d');
    expect(hex(oid('2.5.29.17'))).toBe('0603551d11');
    expect(hex(oid('1.3.6.1.5.5.7.3.1'))).toBe('06082b06010505070301');
    expect(hex(oid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
  });

  test('time: UTCTime through 2049, GeneralizedTime from 2050 and before 1950, whole seconds in Z', () => {
    const ascii = (b: Buffer) => [b[0], b.subarray(2).toString('ascii')];
    expect(ascii(time(Date.UTC(2049, 11, 31, 23, 59, 59, 999)))).toEqual([0x17, '491231235959Z']);
    expect(ascii(time(Date.UTC(2050, 0, 1, 0, 0, 0)))).toEqual([0x18, '20500101000000Z']);
    expect(ascii(time(Date.UTC(2026, 1, 3, 4, 5, 6)))).toEqual([0x17, '260203040506Z']);
    expect(ascii(time(Date.UTC(1949, 11, 31, 0, 0, 0)))).toEqual([0x18, '19491231000000Z']);
  });

  test('BIT STRING, context tags and extensions', () => {
    expect(hex(bitString(Buffer.from([0xab])))).toBe('030200ab');
    expect(hex(contextTag(0, true, smallInteger(2)))).toBe('a003020102');
    expect(hex(contextTag(6, false, Buffer.from('a')))).toBe('860161');
    expect(hex(extension('2.5.29.19', true, sequence()))).toBe('300c0603551d130101ff04023000');
    expect(hex(extension('2.5.29.19', false, sequence()))).toBe('30090603551d1304023000');
  });
});
