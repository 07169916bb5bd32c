// Property of the CSR reader on generated and mutated DER, starting from real PKCS#10 requests (ours, EC and RSA,
// and openssl's): it returns, or throws a TesseraError with a catalogued code, never anything else; and a changed
// CSR passes only when the change means nothing, i.e. openssl re-encodes it to the original bytes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE, TesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { readCsr } from '../../../../control-plane/src/issuance/csr-reader.js';
import { type Mutation, applyAll, mutations } from '../../../helpers/der-mutations.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';

let dir: string;
const bases: { name: string; der: Buffer }[] = [];

function openssl(...args: string[]): Buffer {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** openssl's DER re-encoding of a CSR, or null when openssl cannot read it. */
function reencoded(der: Buffer): Buffer | null {
  writeFileSync(join(dir, 'in.der'), der);
  try {
    return openssl('req', '-inform', 'DER', '-in', 'in.der', '-outform', 'DER');
  } catch {
    return null;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-csr-'));
  bases.push({ name: 'ec', der: await createCsr(generateKeyPair(), { uriSans: ['spiffe://example.org/ns/a/sa/w'], dnsSans: ['w.example.org'] }) });
  bases.push({ name: 'rsa', der: await createCsr(generateKeyPair('rsa-2048'), { uriSans: ['spiffe://example.org/ns/a/sa/r'] }) });
  bases.push({ name: 'ca-request', der: await createCsr(generateKeyPair(), { uriSans: ['spiffe://example.org/ns/a/sa/c'], requestCa: true }) });
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-subj', '/O=Tessera Test', '-addext', 'subjectAltName=URI:spiffe://example.org/ossl', '-addext', 'keyUsage=digitalSignature', '-outform', 'DER', '-out', 'ossl.der');
  bases.push({ name: 'openssl', der: readFileSync(join(dir, 'ossl.der')) });
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Why the reader mishandled a mutated CSR, or null. */
function csrMishandled(base: Buffer, der: Buffer): string | null {
  try {
    readCsr(der);
  } catch (e) {
    if (e instanceof TesseraError && e.code in ERROR_CATALOGUE) return null;
    return `readCsr threw ${(e as Error)?.name} (not a coded TesseraError): ${(e as Error)?.message}`;
  }
  if (der.equals(base)) return null;
  return reencoded(der)?.equals(base) ? null : 'a changed CSR passed the reader';
}

describe('CSR reader on mutated PKCS#10 requests', () => {
  test('every base CSR reads unmutated', () => {
    for (const b of bases) expect(() => readCsr(b.der), b.name).not.toThrow();
  });

  test('mutated CSRs: a coded refusal, never a crash, never a changed CSR accepted', () => {
    fc.assert(
      fc.property(fc.nat(), mutations, (i, ms: Mutation[]) => {
        const base = bases[i % bases.length]!;
        const der = applyAll(base.der, ms);
        const d = csrMishandled(base.der, der);
        if (d) throw new Error(`${d}\n  base: ${base.name}\n  mutated: ${der.toString('hex')}`);
      }),
      fuzzParams(0xc5, 600),
    );
  }, fuzzTimeoutMs());

  // Found by the property: the NULL parameters of an RSA signatureAlgorithm turned into another TLV (05 00 → 00
  // 00, an end-of-contents octet pair) still passed, though nothing signed them and openssl refuses the CSR.
  test('regression: signatureAlgorithm parameters other than NULL are refused', () => {
    const rsa = bases.find((b) => b.name === 'rsa')!.der;
    // ... 30 0d 06 09 <sha256WithRSAEncryption> 05 00 | 03 82 01 01 00 <256-byte signature>
    const at = rsa.length - 261 - 2;
    expect(rsa.subarray(at - 13, at + 2).toString('hex')).toBe('300d06092a864886f70d01010b0500');
    const der = Buffer.from(rsa);
    der[at] = 0x00;
    expect(csrMishandled(rsa, der)).toBeNull();
    expect(() => readCsr(der)).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_CSR_MALFORMED' }));
  });

  test('random bytes: a coded refusal', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const d = csrMishandled(Buffer.alloc(0), Buffer.from(bytes));
        if (d) throw new Error(d);
      }),
      fuzzParams(0xc6, 2000),
    );
  }, fuzzTimeoutMs());
});
