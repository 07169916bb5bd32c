// The TPMS_ATTEST and TPMT_SIGNATURE readers on well-formed, truncated, oversized and random bytes: a quote parses
// to its fields; anything else ends in TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED naming the field, never in
// a RangeError or another exception.
import { createHash, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { MAX_QUOTE_BYTES, parseTpmQuote, parseTpmSignature } from '../../../../control-plane/src/attestation/tpm-structures.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';
import { marshalQuote, signLikeTpm } from '../../../helpers/tpm-marshal.js';

const MALFORMED = 'TESSERA_ERR_ATTESTATION_TPM_QUOTE_MALFORMED';
const extraData = createHash('sha256').update('nonce').digest();
const pcrDigest = createHash('sha256').update('pcrs').digest();
const good = marshalQuote({ extraData, pcrDigest });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

/** The code of what `fn` throws; fails the test on a non-Tessera exception or no exception. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw new Error(`not a TesseraError: ${String(e)}`);
  }
  return 'no error';
}

describe('parseTpmQuote', () => {
  test('reads every field of a quote as a TPM marshals it', () => {
    const q = parseTpmQuote(good);
    expect(q.extraData.equals(extraData)).toBe(true);
    expect(q.pcrDigest.equals(pcrDigest)).toBe(true);
    expect(q.pcrSelections).toEqual([{ hashAlg: 0x000b, pcrs: [0, 7] }]);
    expect(q.resetCount).toBe(1);
    expect(q.safe).toBe(true);
    expect(q.clock).toBe(0x0101010101010101n);
  });

  test('refuses what is not a TPM-generated quote', () => {
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, magic: 0xff544348 }))).toThrow(/TPM_GENERATED_VALUE/);
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, type: 0x8017 }))).toThrow(/TPM_ST_ATTEST_QUOTE/);
    expect(codeOf(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, type: 0x8014 })))).toBe(MALFORMED);
  });

  test('every truncation is malformed, named by the field it cut', () => {
    for (let n = 0; n < good.length; n++) expect(codeOf(() => parseTpmQuote(good.subarray(0, n))), `cut at ${n}`).toBe(MALFORMED);
    expect(() => parseTpmQuote(good.subarray(0, 20))).toThrow(/truncated at qualifiedSigner/);
  });

  test('trailing bytes, oversized lengths and counts are malformed before anything is allocated', () => {
    expect(() => parseTpmQuote(Buffer.concat([good, Buffer.from([0])]))).toThrow(/1 trailing byte/);
    expect(() => parseTpmQuote(marshalQuote({ extraData: Buffer.alloc(65), pcrDigest }))).toThrow(/extraData is 65 bytes/);
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest: Buffer.alloc(65) }))).toThrow(/pcrDigest is 65 bytes/);
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, qualifiedSigner: Buffer.alloc(67) }))).toThrow(/qualifiedSigner is 67 bytes/);
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, selections: [{ hashAlg: 0x000b, pcrs: [1], sizeofSelect: 9 }] }))).toThrow(/sizeofSelect 9/);
    const manySelections = Array.from({ length: 17 }, () => ({ hashAlg: 0x000b, pcrs: [0] }));
    expect(() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, selections: manySelections }))).toThrow(/pcrSelect.count 17/);
    // A count of 2^32-1 with nothing behind it: refused by the bound, not by a loop over missing bytes.
    const hugeCount = Buffer.from(good);
    hugeCount.writeUInt32BE(0xffffffff, good.length - 2 - 32 - 6 - 4);
    expect(() => parseTpmQuote(hugeCount)).toThrow(/pcrSelect.count 4294967295/);
    expect(() => parseTpmQuote(Buffer.alloc(MAX_QUOTE_BYTES + 1))).toThrow(/more than 2048/);
    // A length field of 0xffff on a short buffer.
    const longExtra = Buffer.from(good);
    longExtra.writeUInt16BE(0xffff, 4 + 2 + 2 + 34);
    expect(codeOf(() => parseTpmQuote(longExtra))).toBe(MALFORMED);
  });

  test('random and mutated bytes: a quote or the coded refusal, nothing else', () => {
    const mutated = fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: good.length })).map(([at, byte, cut]) => {
      const b = Buffer.from(good);
      b[at] = byte;
      return b.subarray(0, cut);
    });
    const input = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated);
    fc.assert(
      fc.property(input, (bytes) => {
        const code = codeOf(() => parseTpmQuote(bytes));
        expect(['no error', MALFORMED]).toContain(code);
      }),
      fuzzParams(0x7e57, 2000),
    );
  }, fuzzTimeoutMs());
});

describe('parseTpmSignature', () => {
  test('reads ECDSA and RSASSA signatures', () => {
    const e = parseTpmSignature(signLikeTpm(good, ec));
    expect(e.alg).toBe('ecdsa');
    expect(e.hash).toBe('sha256');
    if (e.alg === 'ecdsa') expect([e.r.length, e.s.length]).toEqual([32, 32]);
    const r = parseTpmSignature(signLikeTpm(good, rsa));
    expect(r.alg).toBe('rsassa');
    if (r.alg !== 'ecdsa') expect(r.sig.length).toBe(256);
  });

  test('unknown algorithms, hashes, truncations and oversized lengths are malformed', () => {
    const sig = signLikeTpm(good, ec);
    expect(() => parseTpmSignature(Buffer.from([0x00, 0x10, 0x00, 0x0b]))).toThrow(/sigAlg 0x0010/);
    const badHash = Buffer.from(sig);
    badHash.writeUInt16BE(0x0012, 2);
    expect(() => parseTpmSignature(badHash)).toThrow(/hash 0x0012/);
    for (let n = 0; n < sig.length; n++) expect(codeOf(() => parseTpmSignature(sig.subarray(0, n))), `cut at ${n}`).toBe(MALFORMED);
    const longR = Buffer.from(sig);
    longR.writeUInt16BE(0x4000, 4);
    expect(() => parseTpmSignature(longR)).toThrow(/signatureR is 16384 bytes/);
    expect(() => parseTpmSignature(Buffer.concat([sig, Buffer.alloc(1)]))).toThrow(/trailing/);
  });

  test('random bytes: a signature or the coded refusal, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(['no error', MALFORMED]).toContain(codeOf(() => parseTpmSignature(bytes)));
      }),
      fuzzParams(0x516, 2000),
    );
  }, fuzzTimeoutMs());
});

// Audit 56a F4: the audit line carries details.reason, which said "1 trailing byte(s)" or "empty" for the quote and
// the signature alike; errors.md promises the field is named there. Every malformed variant of either names it.
describe('the refusal reason (the audit line) names the field, quote or signature', () => {
  /** details.reason of what `fn` throws ('' without an error). */
  function reasonOf(fn: () => unknown): string {
    try {
      fn();
    } catch (e) {
      if (e instanceof TesseraError && e.code === MALFORMED) return String(e.details?.['reason']);
      throw e;
    }
    return '';
  }
  const sig = signLikeTpm(good, ec);

  test('trailing bytes, empty, oversized, truncated, not bytes, unknown algorithms: each reason says which', () => {
    const cases: [() => unknown, string][] = [
      [() => parseTpmQuote(Buffer.concat([good, Buffer.from([0])])), 'quote: 1 trailing byte(s)'],
      [() => parseTpmSignature(Buffer.concat([sig, Buffer.from([0])])), 'signature: 1 trailing byte(s)'],
      [() => parseTpmQuote(Buffer.alloc(0)), 'quote: empty'],
      [() => parseTpmSignature(Buffer.alloc(0)), 'signature: empty'],
      [() => parseTpmQuote(Buffer.alloc(MAX_QUOTE_BYTES + 1)), 'quote: 2049 bytes, more than 2048'],
      [() => parseTpmSignature(Buffer.alloc(1025)), 'signature: 1025 bytes, more than 1024'],
      [() => parseTpmQuote('quote' as unknown as Uint8Array), 'quote: not bytes'],
      [() => parseTpmSignature(null as unknown as Uint8Array), 'signature: not bytes'],
      [() => parseTpmQuote(good.subarray(0, 20)), 'quote: truncated at qualifiedSigner'],
      [() => parseTpmSignature(sig.subarray(0, 3)), 'signature: truncated at hash'],
      [() => parseTpmSignature(Buffer.from([0x00, 0x10, 0x00, 0x0b])), 'signature: sigAlg 0x0010'],
      [() => parseTpmQuote(marshalQuote({ extraData, pcrDigest, magic: 0xff544348 })), 'quote: magic 0xff544348'],
    ];
    for (const [fn, start] of cases) expect(reasonOf(fn), start).toMatch(new RegExp(`^${start.replace(/[()^$.*+?[\]{}|\\]/g, '\\$&')}`));
  });

  test('random and mutated bytes: every refusal of a quote starts "quote: ", of a signature "signature: "', () => {
    const mutate = (base: Buffer) =>
      fc.tuple(fc.integer({ min: 0, max: base.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: base.length + 2 })).map(([at, byte, cut]) => {
        const b = Buffer.concat([base, Buffer.alloc(2)]);
        b[at] = byte;
        return b.subarray(0, cut);
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutate(good)), fc.oneof(fc.uint8Array({ maxLength: 300 }), mutate(sig)), (q, s) => {
        const qr = reasonOf(() => parseTpmQuote(q));
        const sr = reasonOf(() => parseTpmSignature(s));
        if (qr !== '') expect(qr.startsWith('quote: ')).toBe(true);
        if (sr !== '') expect(sr.startsWith('signature: ')).toBe(true);
      }),
      fuzzParams(0x56f4, 1000),
    );
  }, fuzzTimeoutMs());
});
