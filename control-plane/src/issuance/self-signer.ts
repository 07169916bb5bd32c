// Which signing chain the control plane's own SVID (its gRPC port, and the bundle endpoint that follows it) is signed
// by. Not always the active one: a proxy (or a federated https_spiffe peer) that missed `ca prepare` holds the old
// root only, and verifies the control plane with it to reconnect and receive the bundle that adds the new root. So the
// oldest retired authority still in the bundle signs it while its chain can give a whole SVID lifetime, as SPIRE's
// server keeps chaining to a root its agents hold during a rotation (audit 55b F1). A retired authority is removed
// only once no other live SVID chains to it (its own SVIDs do not count: the store's liveByAuthority); the switch to
// the active one then comes before the bundle without the old root is pushed (main.ts).
import type { CaSnapshot, SigningAuthority } from '../ca/ca-manager.js';

/** The oldest retired chain valid now and for `ttlMs` more; else the active one. */
export function selfSigner(ca: Pick<CaSnapshot, 'signer' | 'retiredSigners'>, nowMs: number, ttlMs: number): SigningAuthority {
  // A chain ending within one lifetime would cut the SVID short and have it renewed at once: the active one lasts.
  return ca.retiredSigners.find((s) => s.notBeforeMs <= nowMs && s.notAfterMs >= nowMs + ttlMs) ?? ca.signer;
}
