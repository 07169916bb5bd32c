// One spelling of a certificate serial: what node:crypto prints, what the control plane records and what an
// operator types (colons, upper case, leading zeros) all compare equal; anything else is refused.
import { describe, expect, test } from 'vitest';
import { canonicalSerial } from '../../../../common/pki/serial.js';
import { TestCa } from '../../../helpers/test-ca.js';

describe('canonicalSerial', () => {
  test.each([
    ['0a11', '0a11'],
    ['0A11', '0a11'],
    ['a11', '0a11'],
    ['0a:11', '0a11'],
    ['0A:11', '0a11'],
    ['00ff', 'ff'],
    ['00 00 ff', 'ff'],
    ['05', '05'],
    ['0', '00'],
    ['0000', '00'],
  ])('%s → %s', (input, want) => expect(canonicalSerial(input)).toBe(want));

  test.each(['', ':', 'xyz', '0x0a', '-01', '0a11g', 'a'.repeat(41)])('refuses %j', (input) => expect(canonicalSerial(input)).toBeUndefined());

  test('accepts the longest serial RFC 5280 allows (20 octets)', () => expect(canonicalSerial('7f'.repeat(20))).toBe('7f'.repeat(20)));

  test('node:crypto prints a minted SVID serial in the canonical form, up to case', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    for (let i = 0; i < 8; i++) {
      const svid = await ca.mintSvid('spiffe://example.org/ns/default/sa/web');
      const printed = svid.leaf.serialNumber;
      expect(canonicalSerial(printed)).toBe(printed.toLowerCase());
    }
  });
});
