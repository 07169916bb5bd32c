// The identity the control-plane source installs: its SVID with the trust bundles of two channels. Config/Watch
// snapshots are the truth (complete, versioned; only they remove an authority); the bundle that came with the SVID
// bootstraps before the first snapshot and keeps the authority the proxy's own SVID chains to, should the watch
// lag behind a CA change.
import type { X509Certificate } from 'node:crypto';
import { TrustBundle, type TrustBundleSet, TrustBundleSet as BundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { IssuedSvid } from './control-plane-svid-source.js';
import type { IdentityStore } from './identity-store.js';

/**
 * The authorities of the SVID answer that issued the top of the chain, matched by name and key identifier (the
 * control plane's CA writes key identifiers derived from the key, so this picks the signer). No signature is
 * checked here: the identity store verifies the chain once, under the bundles chosen below.
 */
function issuersOf(svid: IssuedSvid): X509Certificate[] {
  const top = svid.chain[svid.chain.length - 1]!;
  return svid.bundle.authorities.filter((a) => a.fingerprint256 === top.fingerprint256 || top.checkIssued(a));
}

export function effectiveBundles(watched: TrustBundleSet | undefined, svid: IssuedSvid | undefined): TrustBundleSet | undefined {
  if (!svid) return watched;
  if (!watched) return new BundleSet([svid.bundle]);
  const own = watched.get(svid.bundle.trustDomain);
  const held = new Set(own?.authorities.map((a) => a.fingerprint256) ?? []);
  if (issuersOf(svid).some((a) => held.has(a.fingerprint256))) return watched;
  // The watch has not (yet) delivered the authority of our own SVID: add the SVID answer's authorities to it.
  return watched.with(new TrustBundle(svid.bundle.trustDomain, [...(own?.authorities ?? []), ...svid.bundle.authorities]));
}

function sameBundles(a: TrustBundleSet, b: TrustBundleSet): boolean {
  const key = (s: TrustBundleSet) =>
    s
      .bundles()
      .map((x) => `${x.trustDomain.name}=${x.fingerprints().sort().join(',')}`)
      .sort()
      .join(';');
  return key(a) === key(b);
}

/**
 * Installs the identity made of the SVID and the watched bundles (the bootstrap bundles before either has any).
 * The store validates it whole; a change of policies alone leaves the identity as it is: no new TLS contexts, no
 * cache flush.
 */
export function installIdentity(store: IdentityStore, svid: IssuedSvid | undefined, watched: TrustBundleSet | undefined, bootstrap: TrustBundleSet): void {
  if (!svid) return;
  const bundles = effectiveBundles(watched, svid) ?? bootstrap;
  const cur = store.current;
  if (cur && cur.serial === svid.serial && sameBundles(cur.bundles, bundles)) return;
  store.update({ chain: svid.chain, key: svid.key, bundles, source: 'control-plane' });
}
