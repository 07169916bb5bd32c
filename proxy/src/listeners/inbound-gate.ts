// The checks every inbound connection and request passes, whatever the protocol: the peer's SVID (verified
// against the bundle of its own trust domain, reason counted, never told to the peer) and the authorization
// decision against the policy snapshot in force at that moment.
import type { TLSSocket } from 'node:tls';
import { evaluate } from '../../../common/policy/evaluate.js';
import type { Decision } from '../../../common/policy/policy-types.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { PeerVerifier, type VerifiedPeer } from '../tls/peer-verify.js';
import type { ListenerDeps } from './listener-deps.js';

export class InboundGate {
  readonly #d: ListenerDeps;
  readonly #name: string;
  readonly #verifier = new PeerVerifier();

  constructor(deps: ListenerDeps, listenerName: string) {
    this.#d = deps;
    this.#name = listenerName;
  }

  /**
   * Verifies the client SVID of a finished handshake; on failure the socket is destroyed and null returned.
   * `h2`: the socket is an HTTP/2 session's guarded view, which must not be touched (the caller closes the session).
   */
  admit(socket: TLSSocket, h2 = false): { peer: VerifiedPeer; snapshot: IdentitySnapshot } | null {
    const d = this.#d;
    const snapshot = d.identity.current!;
    const peer = this.#verifier.verifySocket(socket, snapshot, d.nowMs());
    if (!peer.ok) {
      d.metrics.handshake('inbound', false, peer.reason, false);
      d.log.info({ listener: this.#name, reason: peer.reason, detail: peer.message }, 'inbound peer refused');
      if (!h2) socket.destroy();
      return null;
    }
    d.metrics.handshake('inbound', true, 'none', socket.isSessionReused());
    d.metrics.connectionOpened('inbound');
    socket.once('close', () => d.metrics.connectionClosed('inbound'));
    if (!h2) socket.setNoDelay(true);
    return { peer, snapshot };
  }

  decide(peer: VerifiedPeer, port: number, protocol: 'http' | 'grpc' | 'tcp', method?: string, path?: string): Decision {
    const d = this.#d;
    const decision = evaluate(d.policies.current, {
      source: peer.id,
      destination: d.identity.current!.id,
      port,
      ...(method ? { method } : {}),
      ...(path !== undefined ? { path } : {}),
      protocol,
      nowMs: d.nowMs(),
    });
    d.metrics.authzDecision(decision.allowed, decision.mode, decision.policy);
    if (decision.audit) d.metrics.authzDecision(decision.audit.allowed, 'audit', decision.audit.policy);
    return decision;
  }
}
