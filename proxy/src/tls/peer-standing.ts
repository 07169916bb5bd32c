// Whether a peer admitted at its handshake still stands, for the connection it keeps open: its verified path within
// its validity, and the anchor that path ended at still in the bundle of its trust domain. A connection (or
// multiplexed session) whose peer no longer stands is drained: it takes no new request, as a new handshake with the
// same chain would be refused; what is in flight finishes (a tunnel or WebSocket included, as Envoy leaves them).
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';

/** Why an open connection's peer no longer stands: a metric label. */
export type PeerLapse = 'peer_expired' | 'peer_untrusted';

/** What the judgement reads of a verified peer (VerifiedPeer). */
export interface StandingPeer {
  readonly notAfterMs: number;
  readonly trustDomain: string;
  /** The trust anchor its path ended at (`anchorOf`: its name and key, so a root renewed with both still holds). */
  readonly anchor: string;
}

/** The lapse, or null while the peer stands. Two map lookups and a set lookup. */
export function peerLapse(peer: StandingPeer, bundles: TrustBundleSet, nowMs: number): PeerLapse | null {
  if (nowMs >= peer.notAfterMs) return 'peer_expired';
  const bundle = bundles.get(peer.trustDomain);
  if (!bundle?.anchors().has(peer.anchor)) return 'peer_untrusted';
  return null;
}
