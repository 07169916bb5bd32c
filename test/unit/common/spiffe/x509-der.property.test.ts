// Property of the DER/X.509 field reader and the X.509-SVID verifier on generated and mutated DER, starting from
// real SVIDs (the test CA's, EC and RSA, and one issued by openssl): the field reader either reads or throws a
// DerError; the verifier never throws and answers with a catalogued code; and a mutated certificate never
// verifies (what verifies is byte for byte the certificate the CA signed).
import { execFileSync } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ERROR_CATALOGUE } from '../../../../common/errors.js';
import { DerError } from '../../../../common/pki/der.js';
import { privateKeyPem } from '../../../../common/pki/keys.js';
import { encodePem } from '../../../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { readCertFields } from '../../../../common/spiffe/x509-fields.js';
import { verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import { type Mutation, applyAll, mutations } from '../../../helpers/der-mutations.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';
import { TestCa } from '../../../helpers/test-ca.js';

interface Base {
  readonly name: string;
  readonly leaf: Buffer;
  readonly rest: readonly X509Certificate[];
}

let ca: TestCa;
let bundles: TrustBundleSet;
let nowMs: number;
const bases: Base[] = [];
let dir: string;

/** A leaf signed by the test CA's intermediate with openssl itself (another encoder than ours). */
function opensslLeaf(): Buffer {
  writeFileSync(join(dir, 'int.pem'), encodePem('CERTIFICATE', ca.intermediate.cert.raw));
  writeFileSync(join(dir, 'int.key'), privateKeyPem(ca.intermediate.key));
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=URI:spiffe://example.org/ossl\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n');
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-subj', '/O=Tessera Test', '-out', 'leaf.csr');
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-outform', 'DER', '-out', 'leaf.der');
  return readFileSync(join(dir, 'leaf.der'));
}

beforeAll(async () => {
  nowMs = Date.now();
  dir = mkdtempSync(join(tmpdir(), 'tessera-der-'));
  ca = await TestCa.create({ trustDomain: 'example.org', nowMs });
  bundles = new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
  const ec = await ca.mintSvid('spiffe://example.org/ns/a/sa/ec');
  const rsa = await ca.mintSvid('spiffe://example.org/ns/a/sa/rsa', { algorithm: 'rsa-2048' });
  const direct = await ca.mintSvid('spiffe://example.org/ns/a/sa/direct', { direct: true });
  bases.push({ name: 'ec', leaf: ec.leaf.raw, rest: [ca.intermediate.cert] });
  bases.push({ name: 'rsa', leaf: rsa.leaf.raw, rest: [ca.intermediate.cert] });
  bases.push({ name: 'direct', leaf: direct.leaf.raw, rest: [] });
  bases.push({ name: 'openssl', leaf: opensslLeaf(), rest: [ca.intermediate.cert] });
  nowMs = Date.now() + 5_000; // openssl's notBefore is the current second
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Why a mutated certificate was mishandled, or null. */
function certMishandled(base: Base, der: Buffer): string | null {
  try {
    readCertFields(der);
  } catch (e) {
    if (!(e instanceof DerError)) return `readCertFields threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  let v: ReturnType<typeof verifyX509Svid>;
  try {
    v = verifyX509Svid([der, ...base.rest], bundles, { nowMs });
  } catch (e) {
    return `verifyX509Svid threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  if (!v.ok) return v.code in ERROR_CATALOGUE ? null : `uncatalogued code ${v.code}`;
  return der.equals(base.leaf) ? null : 'a changed certificate verified as a valid SVID';
}

const hex = (b: Buffer) => b.toString('hex');

describe('DER/X.509 reader and SVID verifier on mutated certificates', () => {
  test('every base certificate verifies unmutated (the property starts from valid SVIDs)', () => {
    for (const b of bases) {
      const v = verifyX509Svid([b.leaf, ...b.rest], bundles, { nowMs });
      expect(v.ok ? 'ok' : v.message, b.name).toBe('ok');
    }
  });

  test('mutated certificates: a DerError or a coded refusal, never a crash, never accepted', () => {
    fc.assert(
      fc.property(fc.nat(), mutations, (i, ms: Mutation[]) => {
        const base = bases[i % bases.length]!;
        const der = applyAll(base.leaf, ms);
        const d = certMishandled(base, der);
        if (d) throw new Error(`${d}\n  base: ${base.name}\n  mutated: ${hex(der)}`);
      }),
      fuzzParams(0xde7, 600),
    );
  }, fuzzTimeoutMs());

  // Found by the property: Node's X509Certificate (OpenSSL) reads past trailing bytes and non-minimal lengths,
  // so these verified as the original SVID. Kept for every base.
  test.each([
    ['one trailing byte', [{ kind: 'trail', bytes: [0] }]],
    ['a whole second TLV after the certificate', [{ kind: 'trail', bytes: [0x30, 0x00] }]],
    ['a non-minimal outer length', [{ kind: 'length', node: 0, to: 'non-minimal', random: 0 }]],
  ] as const)('regression: %s', (_name, ms) => {
    for (const base of bases) expect(certMishandled(base, applyAll(base.leaf, ms as readonly Mutation[])), base.name).toBeNull();
  });

  test('random bytes and deep nesting never crash the field reader', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          readCertFields(bytes);
        } catch (e) {
          if (!(e instanceof DerError)) throw e;
        }
      }),
      fuzzParams(0xde8, 2000),
    );
  }, fuzzTimeoutMs());
});
