// readCsr on hand-built PKCS#10 requests: structurally short nodes (an Extension with no value, an algorithm
// with no OID) are CSR_MALFORMED refusals, never internal faults.
import { sign } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { contextTag, oid, sequence, set, smallInteger, tlv, unsignedInteger } from '../../../../control-plane/src/ca/der-writer.js';
import { readCsr } from '../../../../control-plane/src/issuance/csr-reader.js';

const ECDSA_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

/** A correctly self-signed CSR whose extensionRequest holds `extensions` as given (possibly malformed). */
function csrWith(extensions: Buffer, algorithm: Buffer = ECDSA_SHA256): Buffer {
  const key = generateKeyPair();
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  const attr = sequence(oid('1.2.840.113549.1.9.14'), set(extensions));
  const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true, attr));
  const signature = sign('sha256', info, key.privateKey);
  return sequence(info, algorithm, tlv(0x03, Buffer.from([0]), signature));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e instanceof TesseraError ? e.code : `not a TesseraError: ${(e as Error).message}`;
  }
}

describe('readCsr', () => {
  test('accepts a CSR made by the PKI helpers, with its URI SAN', async () => {
    const csr = readCsr(await createCsr(generateKeyPair(), { uriSans: ['spiffe://example.org/a'] }));
    expect(csr.sans).toEqual([{ type: 'uri', value: 'spiffe://example.org/a' }]);
    expect(csr.requestsCa).toBe(false);
  });

  test('an Extension with an id but no value is malformed', () => {
    expect(codeOf(() => readCsr(csrWith(sequence(sequence(oid('2.5.29.17'))))))).toBe('TESSERA_ERR_CSR_MALFORMED');
  });

  test('an empty Extension is malformed', () => {
    expect(codeOf(() => readCsr(csrWith(sequence(sequence()))))).toBe('TESSERA_ERR_CSR_MALFORMED');
  });

  test('a signature algorithm without an OID is malformed', () => {
    expect(codeOf(() => readCsr(csrWith(sequence(), sequence())))).toBe('TESSERA_ERR_CSR_MALFORMED');
  });

  test('a signature algorithm naming another key type than the CSR key is a bad signature, both ways', () => {
    // An EC key labelled sha256WithRSAEncryption: the signature is the EC key's own, the label is not.
    const rsaLabel = sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05));
    expect(codeOf(() => readCsr(csrWith(sequence(), rsaLabel)))).toBe('TESSERA_ERR_CSR_BAD_SIGNATURE');
    // An RSA key labelled ecdsa-with-SHA256.
    const rsa = generateKeyPair('rsa-2048');
    const info = sequence(smallInteger(0), sequence(), rsa.publicKey.export({ type: 'spki', format: 'der' }), contextTag(0, true));
    const csr = sequence(info, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sign('sha256', info, rsa.privateKey)));
    expect(codeOf(() => readCsr(csr))).toBe('TESSERA_ERR_CSR_BAD_SIGNATURE');
    // The same RSA CSR with its own label is accepted.
    const good = sequence(info, rsaLabel, tlv(0x03, Buffer.from([0]), sign('sha256', info, rsa.privateKey)));
    expect(readCsr(good).algorithm).toBe('rsa-2048');
  });

  test('an RSA exponent over 2^256-1 is refused before its signature is checked (an unattested caller can send one)', () => {
    const huge = (1n << 3000n) + 1n;
    const n = Buffer.from(generateKeyPair('rsa-2048').publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const spki = sequence(sequence(oid('1.2.840.113549.1.1.1'), tlv(0x05)), tlv(0x03, Buffer.from([0]), sequence(unsignedInteger(n), unsignedInteger(Buffer.from(huge.toString(16).padStart(752, '0'), 'hex')))));
    const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true));
    const csr = sequence(info, sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), tlv(0x03, Buffer.from([0]), Buffer.alloc(256, 1)));
    expect(codeOf(() => readCsr(csr))).toBe('TESSERA_ERR_PKI_WEAK_KEY');
  });

  test('truncated bytes are malformed', async () => {
    const der = await createCsr(generateKeyPair(), {});
    for (const n of [0, 1, 2, 10, der.length - 1]) expect(codeOf(() => readCsr(der.subarray(0, n))), `${n} bytes`).toBe('TESSERA_ERR_CSR_MALFORMED');
  });
});
