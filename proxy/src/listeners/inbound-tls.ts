// The TLS side shared by the inbound (mTLS) listeners, HTTP/1.1 and HTTP/2 alike: server options built from the
// identity in force and rebuilt on every rotation (so a fresh handshake serves the current SVID serial), the
// handshake deadline, failed handshakes closed and counted, handshakes timed from accept, the client SVID verified
// and checked against the deny-list (open connections of newly banned peers closed), and the x-forwarded-client-cert
// element a verified peer's requests carry to the app (built once per verified peer and identity, not per connection).
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type { InboundConfig } from '../config/proxy-config.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import type { VerifiedPeer } from '../tls/peer-verify.js';
import { serverSecureOptions } from '../tls/tls-contexts.js';
import { xfccElement } from '../tls/xfcc.js';
import { InboundGate } from './inbound-gate.js';
import type { ListenerDeps } from './listener-deps.js';
import type { SessionSet } from './session-set.js';

export interface AdmittedPeer {
  readonly peer: VerifiedPeer;
  readonly snapshot: IdentitySnapshot;
  /** The XFCC element for this peer's requests: By = this proxy's ID, Hash, URI = the peer's ID. */
  readonly xfcc: string;
}

export class InboundTls {
  /** Authorization and the SVID and deny-list checks of each connection. */
  readonly gate: InboundGate;
  readonly #config: InboundConfig;
  readonly #d: ListenerDeps;
  readonly #alpn: string[];
  #server: tls.Server | undefined;
  /** The XFCC element per verified peer (PeerVerifier hands out the same object while it holds the peer). */
  readonly #xfcc = new WeakMap<VerifiedPeer, { readonly snapshot: IdentitySnapshot; readonly element: string }>();

  /** `alpn`: the protocols offered (none for TCP). */
  constructor(config: InboundConfig, deps: ListenerDeps, alpn: readonly string[]) {
    this.#config = config;
    this.#d = deps;
    this.#alpn = [...alpn];
    this.gate = new InboundGate(deps, config.name);
  }

  /** Options for the TLS server: the identity in force and the handshake deadline. */
  serverOptions(): tls.TlsOptions {
    const snapshot = this.#d.identity.current;
    if (!snapshot) throw new Error('inbound listener started before the first SVID');
    return { ...this.#secureOptions(snapshot), handshakeTimeout: this.#d.limits.handshakeTimeoutMs };
  }

  /**
   * Serves TLS on `server`: a new identity becomes its secure context, a failed handshake is closed and counted,
   * handshakes are timed from accept on `accepting` (the server bound to the port), and the connections in
   * `sessions` of peers a new deny-list bans are closed. Returns the undo, for the listener's close().
   */
  attach(server: tls.Server, accepting: net.Server, sessions: SessionSet): () => void {
    const d = this.#d;
    this.#server = server;
    this.gate.timeHandshakes(accepting);
    server.on('tlsClientError', (err, socket) => {
      // With a listener attached Node no longer destroys the socket: a handshake timeout would leave it open.
      socket.destroy();
      d.metrics.handshake('inbound', false, classifyTlsError(err), false);
      d.log.debug({ listener: this.#config.name, err: err.message }, 'inbound TLS handshake failed');
    });
    const unsubscribe = d.identity.subscribe((s) => server.setSecureContext(this.#secureOptions(s)));
    const unrevoke = this.gate.closeRevoked(sessions);
    const unlapse = this.gate.drainLapsed(sessions);
    return () => {
      unsubscribe();
      unrevoke();
      unlapse();
    };
  }

  /** New session-ticket keys: tickets issued before no longer resume (a full handshake instead). */
  rotateTicketKeys(): void {
    this.#server?.setTicketKeys(this.#d.ticketKeys.current);
  }

  /** The verified peer of a finished handshake, or null (refused: counted, the socket destroyed). */
  admit(socket: tls.TLSSocket): AdmittedPeer | null {
    const admitted = this.gate.admit(socket);
    if (!admitted) return null;
    const { peer, snapshot } = admitted;
    let x = this.#xfcc.get(peer);
    if (x?.snapshot !== snapshot) {
      x = { snapshot, element: xfccElement({ by: snapshot.id.toString(), hash: peer.leafHash, uri: peer.idText }) };
      this.#xfcc.set(peer, x);
    }
    return { peer, snapshot, xfcc: x.element };
  }

  #secureOptions(snapshot: IdentitySnapshot): tls.TlsOptions {
    return serverSecureOptions(snapshot, this.#d.ticketKeys.forGeneration(snapshot.generation), this.#config.tlsMinVersion, this.#alpn, this.#d.transport.tlsGroups);
  }
}
