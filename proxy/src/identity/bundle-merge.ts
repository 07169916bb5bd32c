// Which trust bundles the proxy uses when two channels deliver them: Config/Watch snapshots are the truth (complete,
// versioned; only they remove an authority), and the bundle that came with the SVID bootstraps before the first
// snapshot and keeps the authority the proxy's own SVID chains to, should the watch lag behind a CA change.
import { TrustBundle, type TrustBundleSet, TrustBundleSet as BundleSet } from '../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import type { IssuedSvid } from './control-plane-svid-source.js';

export function effectiveBundles(watched: TrustBundleSet | undefined, svid: IssuedSvid | undefined, nowMs: number): TrustBundleSet | undefined {
  if (!svid) return watched;
  if (!watched) return new BundleSet([svid.bundle]);
  if (verifyX509Svid(svid.chain, watched, { nowMs }).ok) return watched;
  // The watch has not (yet) delivered the authority of our own SVID: add the SVID answer's authorities to it.
  const own = watched.get(svid.bundle.trustDomain);
  return watched.with(new TrustBundle(svid.bundle.trustDomain, [...(own?.authorities ?? []), ...svid.bundle.authorities]));
}
