// The checks every inbound connection and request passes, whatever the protocol: the peer's SVID (verified
// against the bundle of its own trust domain, reason counted, never told to the peer), the operator's deny-list
// (also applied to open connections when a new list arrives) and the authorization decision against the policy
// snapshot in force at that moment. Per handshake it costs a fingerprint lookup (PeerVerifier's cache) and two set
// lookups (deny-list): nothing here parses a certificate or reads the peer's address again.
import type { Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Decision } from '../../../common/policy/policy-types.js';
import { isServedCheck } from '../admin/served-check.js';
import { authorize } from '../authz/authorize.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { AcceptTimes } from '../telemetry/accept-times.js';
import { type DenyList, deniedBy } from '../tls/deny-list.js';
import { refuseRenegotiation } from '../../../shared-io/no-renegotiation.js';
import { peerLapse } from '../tls/peer-standing.js';
import { PeerVerifier, type VerifiedPeer } from '../tls/peer-verify.js';
import type { ListenerDeps } from './listener-deps.js';
import { countConnection } from './served-listener.js';
import type { SessionSet } from './session-set.js';

export class InboundGate {
  readonly #d: ListenerDeps;
  readonly #name: string;
  readonly #verifier = new PeerVerifier();
  #accepts: AcceptTimes | undefined;

  constructor(deps: ListenerDeps, listenerName: string) {
    this.#d = deps;
    this.#name = listenerName;
  }

  /** Times handshakes on `server` from TCP accept, for tessera_tls_handshake_duration_seconds{direction="inbound"}. */
  timeHandshakes(server: Server): void {
    this.#accepts = new AcceptTimes(server, this.#d.nowMs);
  }

  /**
   * Verifies the client SVID of a finished handshake, before anything is written to the socket; on failure the
   * socket is destroyed (no session ticket went out) and null returned.
   */
  admit(socket: TLSSocket): { peer: VerifiedPeer; snapshot: IdentitySnapshot } | null {
    const d = this.#d;
    refuseRenegotiation(socket, () => d.metrics.handshake('inbound', false, 'protocol', false));
    const snapshot = d.identity.current!;
    const peer = this.#verifier.verifySocket(socket, snapshot, d.nowMs());
    if (!peer.ok) {
      d.metrics.handshake('inbound', false, peer.reason, socket.isSessionReused());
      d.log.info({ listener: this.#name, reason: peer.reason, detail: peer.message }, 'inbound peer refused');
      socket.destroy();
      return null;
    }
    // The served-serial check of this proxy: ended, neither counted nor served (svid_served_checks_total has it).
    if (isServedCheck(socket.servername, peer.serial, snapshot)) {
      socket.end();
      return null;
    }
    const banned = deniedBy(d.denyList.current, peer);
    if (banned) {
      d.metrics.handshake('inbound', false, 'revoked', socket.isSessionReused());
      d.log.warn({ listener: this.#name, peer: peer.idText, serial: peer.serial, banned }, 'inbound peer refused: revoked');
      socket.destroy();
      return null;
    }
    d.metrics.handshake('inbound', true, 'none', socket.isSessionReused(), this.#accepts?.secondsSince(socket, d.nowMs()));
    countConnection(d, 'inbound', socket);
    socket.setNoDelay(true);
    return { peer, snapshot };
  }

  /** Closes the open connections of peers each new deny-list bans; returns the unsubscribe function. */
  closeRevoked(sessions: SessionSet): () => void {
    const d = this.#d;
    return d.denyList.subscribe((list: DenyList) => {
      const n = sessions.closePeers((p) => deniedBy(list, p) !== null);
      if (n === 0) return;
      d.metrics.connectionsRevoked('inbound', n);
      d.log.warn({ listener: this.#name, closed: n }, 'closed connections of revoked peers');
    });
  }

  /**
   * Drains the open connections of peers that no longer stand (SVID expired, CA gone from the bundle): judged at every
   * sweep and at once on each new identity (bundle). Returns the unsubscribe function.
   */
  drainLapsed(sessions: SessionSet): () => void {
    const d = this.#d;
    sessions.watchPeers(
      (peer, nowMs) => peerLapse(peer, d.identity.current!.bundles, nowMs),
      (reason, n) => {
        d.metrics.connectionsDrained('inbound', reason, n);
        d.log.warn({ listener: this.#name, reason, drained: n }, 'drained connections of peers whose SVID no longer verifies');
      },
    );
    return d.identity.subscribe(() => sessions.drainLapsed());
  }

  /** `peer` null: a plaintext caller on a permissive listener, judged as unauthenticated. */
  decide(peer: VerifiedPeer | null, port: number, protocol: 'http' | 'grpc' | 'tcp', method?: string, path?: string): Decision {
    // One literal per request, no spreads: absent attributes are undefined (evaluate reads them so).
    return authorize(this.#d, { source: peer === null ? null : peer.id, port, method: method || undefined, path, protocol });
  }
}
