// X.509-SVID leaves signed by the CA's real intermediate: exactly the requested SPIFFE ID as the one URI SAN, the
// requested validity to the second, a fresh positive serial each time, the leaf profile's extensions, a chain
// that both the mesh's own verifier and openssl accept; an intermediate without a key id cannot sign.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateKeyPair, keyPairFromPem } from '../../../../common/pki/keys.js';
import { TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../../common/spiffe/x509-svid.js';
import type { CaSnapshot } from '../../../../control-plane/src/ca/ca-manager.js';
import { type LeafRequest, keyIdentifier, leafIssuer, signLeaf } from '../../../../control-plane/src/ca/leaf-signer.js';
import { DerError } from '../../../../common/pki/der.js';
import { openTestCa } from '../../../helpers/control-plane-parts.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir, run } from '../../../helpers/run.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

describe('signLeaf', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let snap: CaSnapshot;
  const now = Date.UTC(2026, 5, 1, 12, 0, 0);
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir());
    const parts = await openTestCa(dir, new FakeTime(now));
    snap = parts.ca.current();
    await parts.store.close();
  });
  afterAll(async () => cleanup());

  const request = (over: Partial<LeafRequest> = {}): LeafRequest => {
    const key = generateKeyPair(over.keyAlgorithm ?? 'ec-p256');
    return { spiffeId: ID, spkiDer: key.publicKey.export({ type: 'spki', format: 'der' }), keyAlgorithm: 'ec-p256', notBeforeMs: now - 60_000, notAfterMs: now + 3_600_000, ...over };
  };

  test('the leaf names exactly the SPIFFE ID, the requested validity and the returned serial, and chains to the root', () => {
    const req = request();
    const leaf = signLeaf(snap.signer.issuer, req);
    const cert = new X509Certificate(leaf.der);
    expect(cert.subjectAltName).toBe(`URI:${ID}`);
    expect(cert.subject).toBe('O=Tessera');
    expect(cert.issuer).toBe(snap.signer.intermediate.subject);
    expect(cert.validFromDate.getTime()).toBe(req.notBeforeMs);
    expect(cert.validToDate.getTime()).toBe(req.notAfterMs);
    expect(cert.serialNumber.toLowerCase()).toBe(leaf.serialHex);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(req.spkiDer)).toBe(true);
    expect(cert.checkIssued(snap.signer.intermediate)).toBe(true);
    expect(cert.verify(snap.signer.intermediate.publicKey)).toBe(true);
    const verdict = verifyX509Svid([cert, snap.signer.intermediate], new TrustBundleSet([snap.bundle]), { nowMs: now });
    expect(verdict.ok).toBe(true);
    if (verdict.ok) expect(verdict.id.toString()).toBe(ID);
  });

  test('openssl accepts the chain for both TLS roles and reads the leaf profile', async () => {
    const leaf = new X509Certificate(signLeaf(snap.signer.issuer, request()).der);
    writeFileSync(join(dir, 'root.pem'), snap.bundle.toPem());
    writeFileSync(join(dir, 'int.pem'), snap.signer.intermediate.toString());
    writeFileSync(join(dir, 'leaf.pem'), leaf.toString());
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = await run('openssl', ['verify', '-attime', String(now / 1000), '-purpose', purpose, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem'), join(dir, 'leaf.pem')]);
      expect(r.stdout + r.stderr).toContain(': OK');
    }
    const text = (await run('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-ext', 'basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier'])).stdout;
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    const ski = (s: string) => s.replace(/:/g, '').toLowerCase();
    expect(text).toContain(keyIdentifier(leaf.publicKey.export({ type: 'spki', format: 'der' })).toString('hex').match(/../g)!.join(':').toUpperCase());
    expect(ski(text)).toContain(snap.signer.issuer.keyId.toString('hex'));
  });

  test('an RSA key gets keyEncipherment as well', async () => {
    const cert = new X509Certificate(signLeaf(snap.signer.issuer, request({ keyAlgorithm: 'rsa-2048' })).der);
    writeFileSync(join(dir, 'rsa.pem'), cert.toString());
    const text = (await run('openssl', ['x509', '-in', join(dir, 'rsa.pem'), '-noout', '-ext', 'keyUsage'])).stdout;
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
  });

  test('serials are random, positive and 16 bytes', () => {
    const serials = Array.from({ length: 64 }, () => signLeaf(snap.signer.issuer, request()).serialHex);
    expect(new Set(serials).size).toBe(64);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9a-f]{32}$/);
      expect(Number.parseInt(s.slice(0, 2), 16)).toBeGreaterThanOrEqual(1);
      expect(Number.parseInt(s.slice(0, 2), 16)).toBeLessThanOrEqual(0x7f);
    }
  });

  test('validity past 2049 is written as GeneralizedTime and read back exactly', () => {
    const notAfterMs = Date.UTC(2051, 2, 4, 5, 6, 7);
    const cert = new X509Certificate(signLeaf(snap.signer.issuer, request({ notAfterMs })).der);
    expect(cert.validToDate.getTime()).toBe(notAfterMs);
  });

  test('an intermediate without a subjectKeyIdentifier cannot be used to sign', async () => {
    const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=no-ski', '-addext', 'subjectKeyIdentifier=none', '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', join(dir, 'noski.key'), '-out', join(dir, 'noski.crt')]);
    expect(r.code).toBe(0);
    const cert = new X509Certificate(readFileSync(join(dir, 'noski.crt')));
    const key = keyPairFromPem(readFileSync(join(dir, 'noski.key')));
    expect(() => leafIssuer(cert, key.privateKey)).toThrow(DerError);
    // The CA's own intermediate, which has one, yields it as the leaves' authorityKeyIdentifier.
    expect(leafIssuer(snap.signer.intermediate, snap.authorities[0]!.intermediates[0]!.key.privateKey).keyId).toEqual(snap.signer.issuer.keyId);
  });
});
