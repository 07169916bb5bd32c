// peerLapse, the judgement of an open connection's peer: standing while its path is within NotAfter and the anchor it
// ended at is in its trust domain's bundle; expired at NotAfter exactly; untrusted once that anchor (or the whole
// trust domain's bundle) is gone, even when another CA of the same domain, or the same anchor elsewhere, is there;
// standing under a root renewed with the same name and key, a new certificate (audit 57d F3: it was drained as
// untrusted while a new handshake with the same chain passed).
import { expect, test } from 'vitest';
import { issueCertificate } from '../../../../common/pki/cert-builder.js';
import { encodePem } from '../../../../common/pki/pem.js';
import { TrustBundle, TrustBundleSet, anchorOf } from '../../../../common/spiffe/trust-bundle.js';
import { peerLapse } from '../../../../proxy/src/tls/peer-standing.js';
import { TestCa } from '../../../helpers/test-ca.js';

test('standing, expired, untrusted; a renewed root (same name and key) still stands', async () => {
  const [a, b, other] = await Promise.all([TestCa.create({ trustDomain: 'example.org' }), TestCa.create({ trustDomain: 'example.org', rootName: 'CN=B' }), TestCa.create({ trustDomain: 'other.org' })]);
  const peer = { notAfterMs: 10_000, trustDomain: 'example.org', anchor: anchorOf(a.root.cert) };
  const both = new TrustBundleSet([TrustBundle.parse('example.org', a.bundlePem() + b.bundlePem())]);
  expect(peerLapse(peer, both, 9_999)).toBeNull();
  expect(peerLapse(peer, both, 10_000)).toBe('peer_expired');
  const onlyB = new TrustBundleSet([TrustBundle.parse('example.org', b.bundlePem())]);
  expect(peerLapse(peer, onlyB, 0)).toBe('peer_untrusted');
  // The anchor still trusted, but for another trust domain only: not this peer's.
  const elsewhere = new TrustBundleSet([TrustBundle.parse('example.org', b.bundlePem()), TrustBundle.parse('other.org', a.bundlePem() + other.bundlePem())]);
  expect(peerLapse(peer, elsewhere, 0)).toBe('peer_untrusted');
  expect(peerLapse(peer, new TrustBundleSet([]), 0)).toBe('peer_untrusted');

  const now = Date.now();
  const renewed = await issueCertificate({
    subject: a.root.cert.subject.split('\n').join(', '),
    publicKey: a.root.key.publicKey,
    signer: a.root.key,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 48 * 3_600_000),
    basicConstraints: { ca: true },
    keyUsage: ['keyCertSign', 'cRLSign'],
    uriSans: ['spiffe://example.org'],
  });
  expect(renewed.fingerprint256).not.toBe(a.root.cert.fingerprint256);
  expect(renewed.subject).toBe(a.root.cert.subject);
  const renewedOnly = new TrustBundleSet([TrustBundle.parse('example.org', encodePem('CERTIFICATE', renewed.raw))]);
  expect(peerLapse(peer, renewedOnly, 0)).toBeNull();
  // Same name, another key: not the anchor the path was verified with.
  const sameNameOtherKey = await TestCa.create({ trustDomain: 'example.org', rootName: a.root.cert.subject.split('\n').join(', ') });
  expect(sameNameOtherKey.root.cert.subject).toBe(a.root.cert.subject);
  expect(peerLapse(peer, new TrustBundleSet([TrustBundle.parse('example.org', sameNameOtherKey.bundlePem())]), 0)).toBe('peer_untrusted');
});
