// The warning `ca activate` answers with when federated peers may not have the new root yet (audit 54b F3). A peer
// learns a prepared root only at its next fetch of the bundle endpoint (the document's spiffe_refresh_hint, clamped
// by its own refresh bounds), and refuses this domain's new SVIDs until then. With https_spiffe the endpoint presents
// this control plane's SVID, which stays signed by the retired authority until that is removed (issuance/
// self-signer.ts): a peer that has not fetched by then can never fetch again (it needs a new bootstrap bundle).
import type { CaManager } from '../ca/ca-manager.js';
import { SPIFFE_REFRESH_HINT_SECONDS } from '../ca/spiffe-bundle-file.js';

export interface FederationServed {
  /** How the bundle endpoint authenticates itself to peers. */
  readonly profile: 'https_spiffe' | 'https_web';
}

/** The served document's spiffe_refresh_hint. */
const REFRESH_HINT_MS = SPIFFE_REFRESH_HINT_SECONDS * 1_000;

/** The warning for activating `id` (the prepared authority when absent) now, or undefined when none is due. */
export function earlyActivationWarning(ca: CaManager, served: FederationServed | undefined, id: string | undefined, nowMs: number): string | undefined {
  if (!served || !ca.ready) return undefined;
  const target = ca.current().authorities.find((a) => (id === undefined ? a.record.state === 'prepared' : a.record.id === id));
  if (target?.record.state !== 'prepared') return undefined;
  const sinceMs = nowMs - target.record.createdAtMs;
  if (sinceMs >= REFRESH_HINT_MS) return undefined;
  const since = `${Math.max(0, Math.floor(sinceMs / 1000))}s`;
  const hint = `${Math.round(REFRESH_HINT_MS / 1000)}s`;
  const refuse = "federated peers that have not fetched the bundle endpoint since the prepare refuse this domain's new SVIDs until their next fetch";
  const effect =
    served.profile === 'https_spiffe'
      ? `${refuse}; the endpoint keeps presenting an SVID of the retired authority until that is removed (once no SVID it signed is live), and a peer that has not fetched by then cannot fetch any more and needs a new bootstrap bundle`
      : refuse;
  return `authority ${target.record.id} was prepared ${since} ago, less than the bundle's refresh hint (${hint}) federated peers wait between fetches: ${effect}. Wait at least the refresh hint (and your peers' refresh interval) between \`ca prepare\` and \`ca activate\``;
}
