// The stateless checks of a TPM quote with software keys standing in for the TPM's (the structures are marshalled
// as a TPM does; the real-TPM path is test/integration/tpm-attestation.test.ts): the signature by the AK's key
// (ECDSA P-256, RSASSA), refused for another key, a key of the other type, a flipped byte or SHA-1; the PCR
// selection and digest against a policy; the SPIFFE ID from the AK certificate.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { checkPcrPolicy, verifyTpmSignature } from '../../../../control-plane/src/attestation/tpm-quote-verifier.js';
import { checkIdTemplate, tpmSpiffeId } from '../../../../control-plane/src/attestation/tpm-spiffe-id.js';
import { parseTpmQuote, parseTpmSignature } from '../../../../control-plane/src/attestation/tpm-structures.js';
import { marshalQuote, signLikeTpm } from '../../../helpers/tpm-marshal.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pcr0 = Buffer.alloc(32);
const pcr7 = createHash('sha256').update('secure boot').digest();
const digest = createHash('sha256').update(pcr0).update(pcr7).digest();
const quoteBytes = marshalQuote({ extraData: Buffer.alloc(32, 9), pcrDigest: digest });
const quote = parseTpmQuote(quoteBytes);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
  return 'ok';
}

describe('verifyTpmSignature', () => {
  test('accepts the AK key signature, ECDSA and RSASSA', () => {
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(signLikeTpm(quoteBytes, ec.privateKey)), ec.publicKey))).toBe('ok');
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(signLikeTpm(quoteBytes, rsa.privateKey)), rsa.publicKey))).toBe('ok');
  });

  test('refuses another key, the other key type, a changed quote or signature, and SHA-1', () => {
    const bad = 'TESSERA_ERR_ATTESTATION_TPM_BAD_SIGNATURE';
    const sig = signLikeTpm(quoteBytes, ec.privateKey);
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(sig), ec2.publicKey))).toBe(bad);
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(sig), rsa.publicKey))).toBe(bad);
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(signLikeTpm(quoteBytes, rsa.privateKey)), ec.publicKey))).toBe(bad);
    const changed = Buffer.from(quoteBytes);
    changed[50]! ^= 1;
    expect(codeOf(() => verifyTpmSignature(changed, parseTpmSignature(sig), ec.publicKey))).toBe(bad);
    const flipped = Buffer.from(sig);
    flipped[10]! ^= 0x80;
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(flipped), ec.publicKey))).toBe(bad);
    const sha1 = Buffer.from(sig);
    sha1.writeUInt16BE(0x0004, 2);
    expect(() => verifyTpmSignature(quoteBytes, parseTpmSignature(sha1), ec.publicKey)).toThrow(TesseraError);
    expect(codeOf(() => verifyTpmSignature(quoteBytes, parseTpmSignature(sha1), ec.publicKey))).toBe(bad);
  });
});

describe('checkPcrPolicy', () => {
  const policy = (pcrs: [number, Buffer][], bank: 'sha1' | 'sha256' = 'sha256') => ({ bank, pcrs: new Map(pcrs) });
  test('accepts the exact selection with the policy values', () => {
    expect(codeOf(() => checkPcrPolicy(quote, 'sha256', policy([[7, pcr7], [0, pcr0]])))).toBe('ok');
  });
  test('refuses other values, a smaller or larger selection, another bank', () => {
    const mismatch = 'TESSERA_ERR_ATTESTATION_TPM_PCR_MISMATCH';
    expect(() => checkPcrPolicy(quote, 'sha256', policy([[0, pcr0], [7, pcr0]]))).toThrow(TesseraError);
    expect(codeOf(() => checkPcrPolicy(quote, 'sha256', policy([[0, pcr0], [7, pcr0]])))).toBe(mismatch);
    expect(codeOf(() => checkPcrPolicy(quote, 'sha256', policy([[0, pcr0]])))).toBe(mismatch);
    expect(codeOf(() => checkPcrPolicy(quote, 'sha256', policy([[0, pcr0], [7, pcr7], [8, pcr0]])))).toBe(mismatch);
    expect(codeOf(() => checkPcrPolicy(quote, 'sha256', policy([[0, pcr0], [7, pcr7]], 'sha1')))).toBe(mismatch);
    const twoBanks = parseTpmQuote(marshalQuote({ extraData: Buffer.alloc(32), pcrDigest: digest, selections: [{ hashAlg: 0x000b, pcrs: [0, 7] }, { hashAlg: 0x0004, pcrs: [0] }] }));
    try {
      checkPcrPolicy(twoBanks, 'sha256', policy([[0, pcr0], [7, pcr7]]));
      expect.unreachable();
    } catch (e) {
      expect((e as TesseraError).details['reason']).toBe('the quote selects sha256:0,7 sha1:0; the policy needs sha256:0,7');
    }
  });
});

describe('the SPIFFE ID of a TPM', () => {
  const td = TrustDomain.parse('example.org');
  const keyHash = 'ab'.repeat(32);
  test('default: /tpm/ and 32 hex characters of the AK key hash; a template fills {cn} and {akHash}', () => {
    expect(tpmSpiffeId(td, '/tpm/{akHash}', { keyHash, commonName: 'x' }).toString()).toBe(`spiffe://example.org/tpm/${'ab'.repeat(16)}`);
    expect(tpmSpiffeId(td, '/node/{cn}', { keyHash, commonName: 'node-1.rack4' }).toString()).toBe('spiffe://example.org/node/node-1.rack4');
  });
  test('a missing or unusable CN is TESSERA_ERR_ATTESTATION_TPM_NO_ID', () => {
    for (const commonName of [undefined, '..', 'a/b', 'a b', '']) {
      expect(codeOf(() => tpmSpiffeId(td, '/node/{cn}', { keyHash, commonName })), String(commonName)).toBe('TESSERA_ERR_ATTESTATION_TPM_NO_ID');
    }
  });
  test('templates are checked when the config is read', () => {
    expect(checkIdTemplate('/tpm/{akHash}')).toBeNull();
    expect(checkIdTemplate('/nodes/{cn}/{akHash}')).toBeNull();
    expect(checkIdTemplate('tpm/{akHash}')).toMatch(/starting with "\/"/);
    expect(checkIdTemplate('/tpm/{serial}')).toMatch(/unknown placeholder \{serial\}/);
    expect(checkIdTemplate('/tpm/{cn')).toMatch(/unbalanced/);
    expect(checkIdTemplate('/tpm//{cn}')).toMatch(/TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT/);
  });
});
