// readCsr on hand-built PKCS#10 requests: structurally short nodes (an Extension with no value, an algorithm
// with no OID) are CSR_MALFORMED refusals, never internal faults; keys whose signature check would cost too much are
// refused before it.
import { execFileSync } from 'node:child_process';
import { type KeyObject, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { contextTag, oid, sequence, set, smallInteger, tlv, unsignedInteger } from '../../../../common/pki/der-writer.js';
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

  test('a correctly self-signed CSR with an algorithm outside the accepted ones is malformed, not a bad signature (audit 34b F2)', () => {
    for (const [label, digest] of [
      ['1.2.840.10045.4.1', 'sha1'], // ecdsa-with-SHA1, as `openssl req -sha1` writes it
      ['1.2.840.10045.4.3.1', 'sha224'], // ecdsa-with-SHA224
    ] as const) {
      const key = generateKeyPair();
      const info = sequence(smallInteger(0), sequence(), key.publicKey.export({ type: 'spki', format: 'der' }), contextTag(0, true));
      const csr = sequence(info, sequence(oid(label)), tlv(0x03, Buffer.from([0]), sign(digest, info, key.privateKey)));
      expect(codeOf(() => readCsr(csr)), label).toBe('TESSERA_ERR_CSR_MALFORMED');
    }
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

  // The bound is the one every key read is held to (rsa-key-strength.ts: Go's 2^31-1; audit 56a F2 found 2^256-1 still
  // made a check ~15 times dearer). The signature is random bytes: checked, it would be CSR_BAD_SIGNATURE.
  test('an RSA exponent over 2^31-1 is refused before its signature is checked (an unattested caller can send one)', () => {
    const n = Buffer.from(generateKeyPair('rsa-2048').publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const csrWith = (e: bigint) => {
      const hex = e.toString(16);
      const spki = sequence(sequence(oid('1.2.840.113549.1.1.1'), tlv(0x05)), tlv(0x03, Buffer.from([0]), sequence(unsignedInteger(n), unsignedInteger(Buffer.from(hex.padStart(hex.length + (hex.length % 2), '0'), 'hex')))));
      const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true));
      return sequence(info, sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), tlv(0x03, Buffer.from([0]), Buffer.alloc(256, 1)));
    };
    for (const e of [(1n << 3000n) + 1n, (1n << 255n) + 1n, (1n << 31n) + 1n]) expect(codeOf(() => readCsr(csrWith(e))), `e=${e}`).toBe('TESSERA_ERR_PKI_WEAK_KEY');
    expect(() => readCsr(csrWith((1n << 31n) + 1n))).toThrow(/public exponent of 32 bits \(at most 2\^31-1\)/);
    expect(codeOf(() => readCsr(csrWith((1n << 31n) - 1n)))).toBe('TESSERA_ERR_CSR_BAD_SIGNATURE');
  });

  test('an RSA modulus outside 2048 to 4096 bits is refused PKI_UNSUPPORTED_KEY before its signature is checked, whatever the exponent (audit 55c F2)', () => {
    /** A CSR for a random odd modulus of `bits` bits and exponent `e`, with a signature of random bytes (no private key). */
    const unsigned = (bits: number, e: bigint) => {
      const n = randomBytes(Math.ceil(bits / 8));
      n[0] = (n[0]! & (0xff >> (8 * n.length - bits))) | (0x80 >> (8 * n.length - bits));
      n[n.length - 1]! |= 1;
      const spki = sequence(sequence(oid('1.2.840.113549.1.1.1'), tlv(0x05)), tlv(0x03, Buffer.from([0]), sequence(unsignedInteger(n), unsignedInteger(Buffer.from(e.toString(16).padStart(Math.ceil(e.toString(16).length / 2) * 2, '0'), 'hex')))));
      const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true));
      return sequence(info, sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), tlv(0x03, Buffer.from([0]), randomBytes(n.length)));
    };
    const e64 = (1n << 64n) - 1n;
    for (const bits of [1024, 2047, 4097, 8192, 16384]) {
      for (const e of [65537n, e64]) expect(codeOf(() => readCsr(unsigned(bits, e))), `${bits} bits, e=${e}`).toBe('TESSERA_ERR_PKI_UNSUPPORTED_KEY');
    }
    // The sizes at the edges are accepted as sizes: their garbage signature is what refuses them.
    for (const bits of [2048, 4096]) expect(codeOf(() => readCsr(unsigned(bits, 65537n))), `${bits} bits`).toBe('TESSERA_ERR_CSR_BAD_SIGNATURE');
  });

  test('a public key not in its one DER encoding is malformed, even correctly self-signed (audit N4)', () => {
    /** A CSR for `spki` (as given), self-signed by `key` with the algorithm its type takes. */
    const signedFor = (spki: Buffer, key: KeyObject, algorithm = key.asymmetricKeyType === 'ec' ? ECDSA_SHA256 : sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05))) => {
      const info = sequence(smallInteger(0), sequence(), spki, contextTag(0, true));
      return sequence(info, algorithm, tlv(0x03, Buffer.from([0]), sign('sha256', info, key)));
    };
    const rsa = generateKeyPair('rsa-2048');
    const jwk = rsa.publicKey.export({ format: 'jwk' });
    const n = Buffer.from(jwk.n!, 'base64url');
    const rsaAlg = sequence(oid('1.2.840.113549.1.1.1'), tlv(0x05));
    const rsaSpki = (alg: Buffer, ...key: Buffer[]) => sequence(alg, tlv(0x03, Buffer.from([0]), ...key));
    const e = tlv(0x02, Buffer.from([1, 0, 1]));
    // The canonical form reads; each variant of it does not.
    expect(readCsr(signedFor(rsaSpki(rsaAlg, sequence(unsignedInteger(n), e)), rsa.privateKey)).algorithm).toBe('rsa-2048');
    const rsaCases: [string, Buffer][] = [
      ['modulus with an extra leading zero', rsaSpki(rsaAlg, sequence(tlv(0x02, Buffer.from([0, 0]), n), e))],
      ['modulus without its sign byte (a negative INTEGER)', rsaSpki(rsaAlg, sequence(tlv(0x02, n), e))],
      ['non-minimal exponent', rsaSpki(rsaAlg, sequence(unsignedInteger(n), tlv(0x02, Buffer.from([0, 0, 1, 0, 1]))))],
      ['rsaEncryption with INTEGER parameters', rsaSpki(sequence(oid('1.2.840.113549.1.1.1'), smallInteger(5)), sequence(unsignedInteger(n), e))],
      ['rsaEncryption without its NULL', rsaSpki(sequence(oid('1.2.840.113549.1.1.1')), sequence(unsignedInteger(n), e))],
      ['a byte after RSAPublicKey', rsaSpki(rsaAlg, sequence(unsignedInteger(n), e), Buffer.from([0]))],
    ];
    const ec = generateKeyPair();
    const ecJwk = ec.publicKey.export({ format: 'jwk' });
    const [x, y] = [Buffer.from(ecJwk.x!, 'base64url'), Buffer.from(ecJwk.y!, 'base64url')];
    const p256 = sequence(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7'));
    const ecSpki = (point: Buffer) => sequence(p256, tlv(0x03, Buffer.from([0]), point));
    expect(readCsr(signedFor(ecSpki(Buffer.concat([Buffer.from([4]), x, y])), ec.privateKey)).algorithm).toBe('ec-p256');
    // Explicit curve parameters (the real P-256 ones), as openssl writes them with -param_enc explicit.
    const explicitKey = createPrivateKey(execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-param_enc', 'explicit']));
    const explicitSpki = createPublicKey(explicitKey).export({ type: 'spki', format: 'der' });
    const ecCases: [string, Buffer, KeyObject][] = [
      ['a hybrid point', ecSpki(Buffer.concat([Buffer.from([6 + (y[31]! & 1)]), x, y])), ec.privateKey],
      ['a compressed point', ecSpki(Buffer.concat([Buffer.from([2 + (y[31]! & 1)]), x])), ec.privateKey],
      ['explicit curve parameters', explicitSpki, explicitKey],
    ];
    const cases = [...rsaCases.map(([name, spki]) => [name, signedFor(spki, rsa.privateKey)] as const), ...ecCases.map(([name, spki, key]) => [name, signedFor(spki, key)] as const)];
    for (const [name, csr] of cases) expect(codeOf(() => readCsr(csr)), name).toBe('TESSERA_ERR_CSR_MALFORMED');
  });

  test('ECDSA signature algorithms take no parameters, not even NULL (RFC 5758)', () => {
    expect(codeOf(() => readCsr(csrWith(sequence(), sequence(oid('1.2.840.10045.4.3.2'), tlv(0x05)))))).toBe('TESSERA_ERR_CSR_MALFORMED');
    expect(readCsr(csrWith(sequence(), ECDSA_SHA256)).algorithm).toBe('ec-p256');
  });

  test('truncated bytes are malformed', async () => {
    const der = await createCsr(generateKeyPair(), {});
    for (const n of [0, 1, 2, 10, der.length - 1]) expect(codeOf(() => readCsr(der.subarray(0, n))), `${n} bytes`).toBe('TESSERA_ERR_CSR_MALFORMED');
  });
});
