// peerLapse, the judgement of an open connection's peer: standing while its path is within NotAfter and the anchor it
// ended at is in its trust domain's bundle; expired at NotAfter exactly; untrusted once that anchor (or the whole
// trust domain's bundle) is gone, even when another CA of the same domain, or the same anchor elsewhere, is there.
import { expect, test } from 'vitest';
import { TrustBundle, TrustBundleSet } from '../../../../common/spiffe/trust-bundle.js';
import { peerLapse } from '../../../../proxy/src/tls/peer-standing.js';
import { TestCa } from '../../../helpers/test-ca.js';

test('standing, expired, untrusted', async () => {
  const [a, b, other] = await Promise.all([TestCa.create({ trustDomain: 'example.org' }), TestCa.create({ trustDomain: 'example.org', rootName: 'CN=B' }), TestCa.create({ trustDomain: 'other.org' })]);
  const peer = { notAfterMs: 10_000, trustDomain: 'example.org', anchorFingerprint: a.root.cert.fingerprint256 };
  const both = new TrustBundleSet([TrustBundle.parse('example.org', a.bundlePem() + b.bundlePem())]);
  expect(peerLapse(peer, both, 9_999)).toBeNull();
  expect(peerLapse(peer, both, 10_000)).toBe('peer_expired');
  const onlyB = new TrustBundleSet([TrustBundle.parse('example.org', b.bundlePem())]);
  expect(peerLapse(peer, onlyB, 0)).toBe('peer_untrusted');
  // The anchor still trusted, but for another trust domain only: not this peer's.
  const elsewhere = new TrustBundleSet([TrustBundle.parse('example.org', b.bundlePem()), TrustBundle.parse('other.org', a.bundlePem() + other.bundlePem())]);
  expect(peerLapse(peer, elsewhere, 0)).toBe('peer_untrusted');
  expect(peerLapse(peer, new TrustBundleSet([]), 0)).toBe('peer_untrusted');
});
