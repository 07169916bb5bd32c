// What the admin listener's /certs shows (the control plane's own SVID and the authority it chains to, the bundle,
// the signing authority) and
// the CA gauges: read-only views of the CA snapshot, public facts only.
import { fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { CaSnapshot } from '../ca/ca-manager.js';
import { chainValidity } from '../ca/chain-end.js';
import { signingIntermediate } from '../ca/signing-intermediate.js';
import type { SelfSvid } from '../issuance/self-svid.js';
import type { ControlPlaneMetrics } from './metrics.js';

const iso = (ms: number) => new Date(ms).toISOString();

export function certsView(td: TrustDomain, self: SelfSvid | undefined, ca: CaSnapshot) {
  return {
    trustDomain: td.name,
    spiffeId: self?.spiffeId ?? null,
    serial: self?.serial ?? null,
    notBefore: self ? iso(self.notBeforeMs) : null,
    notAfter: self ? iso(self.notAfterMs) : null,
    signingAuthority: ca.signer.authorityId,
    // What this SVID chains to: a retired authority until it is removed, when one is (issuance/self-signer.ts).
    servedAuthority: self?.authorityId ?? null,
    // Where the signing chain ends: the intermediate's NotAfter, or its root's when that comes first.
    intermediateNotAfter: iso(ca.signer.notAfterMs),
    chainEndsWith: ca.signer.endsWith,
    bundleFingerprints: ca.bundle.fingerprints(),
    authorities: ca.authorities.map((a) => ({ id: a.record.id, state: a.record.state, root: a.root.key === null ? 'offline' : 'managed', rootFingerprint: fingerprintOf(a.root.cert), rootNotAfter: iso(a.record.rootNotAfterMs) })),
  };
}

export function updateCaGauges(m: ControlPlaneMetrics, ca: CaSnapshot, nowMs: number): void {
  m.caExpiry.reset();
  m.caAuthorities.reset();
  m.caRootOffline.reset();
  const byState = new Map<string, number>([['prepared', 0], ['active', 0], ['retired', 0]]);
  for (const a of ca.authorities) {
    const state = a.record.state;
    byState.set(state, (byState.get(state) ?? 0) + 1);
    m.caExpiry.set({ authority: a.record.id, cert: 'root', state }, a.record.rootNotAfterMs / 1000);
    // The chain's end (an alert on the intermediate must fire before the root ends it too).
    m.caExpiry.set({ authority: a.record.id, cert: 'intermediate', state }, chainValidity(signingIntermediate(a, nowMs).cert, a.root.cert).notAfterMs / 1000);
    m.caRootOffline.set({ authority: a.record.id }, a.root.key === null ? 1 : 0);
  }
  for (const [state, n] of byState) m.caAuthorities.set({ state }, n);
}
