// The inbound (mTLS) listener: requires a client SVID, verifies it against the bundle of its own trust domain,
// authorizes the caller before any byte reaches the app, then forwards HTTP/1.1 per request (lean forwarder)
// or TCP per connection to the local app. Failure reasons go to metrics and logs, never to the peer.
// With `mtls: permissive` it also takes plaintext on the same port (told apart by the first bytes), judged by
// policy as an unauthenticated caller.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { normalizeRequestTarget } from '../../../common/policy/normalize-path.js';
import { type Decision, UNAUTHENTICATED } from '../../../common/policy/policy-types.js';
import type { InboundConfig } from '../config/proxy-config.js';
import { type HttpHead, headerValue } from '../http1/http1-head.js';
import { Http1Session } from '../http1/http1-session.js';
import type { ExchangeRecord, RequestPlan } from '../http1/http1-session-types.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import type { VerifiedPeer } from '../tls/peer-verify.js';
import { serverSecureOptions } from '../tls/tls-contexts.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { plainConnector } from '../upstream/connectors.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import { InboundGate } from './inbound-gate.js';
import { listenOn } from './listen.js';
import type { ListenerDeps } from './listener-deps.js';
import { SessionSet } from './session-set.js';
import { relay } from './tcp-relay.js';
import { sniffFirstBytes } from './tls-sniff.js';
import type { Listener } from './listener.js';

const STRIP_INBOUND: ReadonlySet<string> = new Set(['x-forwarded-client-cert']);

interface InboundContext {
  readonly requestId: string;
  readonly decision: Decision;
  readonly span: RequestSpan | undefined;
  readonly path: string;
}

export class InboundListener implements Listener {
  readonly kind = 'inbound' as const;
  readonly config: InboundConfig;
  readonly #d: ListenerDeps;
  readonly #server: tls.Server;
  /** Permissive only: accepts, reads the first bytes, then hands TLS to #server and plaintext to this listener. */
  readonly #front: net.Server | null;
  /** Permissive only: connections whose first bytes have not arrived yet (cut by close()). */
  readonly #sniffing = new Set<net.Socket>();
  readonly #gate: InboundGate;
  readonly #pool: ConnectionPool;
  readonly #sessions: SessionSet;
  #port = 0;
  readonly #unsubscribe: () => void;
  readonly #unrevoke: () => void;

  constructor(config: InboundConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    this.#gate = new InboundGate(deps, config.name);
    const snapshot = deps.identity.current;
    if (!snapshot) throw new Error('inbound listener started before the first SVID');
    const tcp = config.protocol === 'tcp';
    this.#server = tls.createServer({
      ...serverSecureOptions(snapshot, deps.ticketKeys.current, config.tlsMinVersion, tcp ? [] : ['http/1.1']),
      handshakeTimeout: deps.limits.handshakeTimeoutMs,
      allowHalfOpen: tcp,
    });
    this.#front = config.mtls === 'permissive' ? net.createServer({ allowHalfOpen: tcp }, (s) => this.#sniff(s)) : null;
    this.#accepting.maxConnections = deps.limits.maxConnections;
    this.#gate.timeHandshakes(this.#accepting);
    this.#unsubscribe = deps.identity.subscribe((s) => this.#server.setSecureContext(serverSecureOptions(s, deps.ticketKeys.current, config.tlsMinVersion, tcp ? [] : ['http/1.1'])));
    this.#pool = new ConnectionPool({
      connect: plainConnector(config.forwardTo.host, config.forwardTo.port, deps.limits.handshakeTimeoutMs),
      maxConnections: deps.limits.upstreamPoolSize,
      maxQueue: deps.limits.maxConnections,
      idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
      nowMs: deps.nowMs,
    });
    this.#sessions = new SessionSet(deps.nowMs, () => this.#pool.sweep());
    this.#unrevoke = this.#gate.closeRevoked(this.#sessions);
    this.#server.on('secureConnection', (s: tls.TLSSocket) => this.#onConnection(s));
    this.#server.on('tlsClientError', (err, socket) => {
      // With a listener attached Node no longer destroys the socket (a handshake timeout would leave it open).
      socket.destroy();
      deps.metrics.handshake('inbound', false, classifyTlsError(err), false);
      deps.log.debug({ listener: config.name, err: err.message }, 'inbound TLS handshake failed');
    });
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#accepting, this.config.listen, () => this.#d.metrics.rejected('inbound', 'too_many_connections'));
    this.#sessions.start();
    return { host: this.config.listen.host, port: this.#port };
  }

  /** New session-ticket keys: tickets issued before no longer resume (a full handshake instead). */
  rotateTicketKeys(): void {
    this.#server.setTicketKeys(this.#d.ticketKeys.current);
  }

  get port(): number {
    return this.#port;
  }

  /** The server bound to the port: the TLS server itself, or the first-bytes front of a permissive listener. */
  get #accepting(): net.Server {
    return this.#front ?? this.#server;
  }

  /** Stop accepting; idle keep-alive connections close now, busy ones after their exchange. */
  drain(): void {
    this.#accepting.close();
    this.#sessions.drain();
  }

  /** Everything still open is cut (after the drain deadline). */
  close(): void {
    this.#unsubscribe();
    this.#unrevoke();
    this.#sessions.destroyAll();
    for (const s of this.#sniffing) s.destroy();
    this.#pool.close();
  }

  idle(): Promise<void> {
    return this.#sessions.idle();
  }

  get openConnections(): number {
    return this.#sessions.size;
  }

  #sniff(socket: net.Socket): void {
    this.#sniffing.add(socket);
    // Bounded by the handshake timeout: a peer that sends nothing costs no more here than in a stalled handshake.
    sniffFirstBytes(socket, this.#d.limits.handshakeTimeoutMs, (r) => {
      this.#sniffing.delete(socket);
      if (r === 'tls') this.#server.emit('connection', socket);
      else if (r === 'plaintext') this.#onPlaintext(socket);
      else if (r === 'timeout') this.#d.metrics.handshake('inbound', false, 'timeout', false);
    });
  }

  /** A plaintext caller on a permissive listener: no SVID, so no peer identity, no XFCC, no deny-list entry. */
  #onPlaintext(socket: net.Socket): void {
    const d = this.#d;
    d.metrics.plaintextConnection(this.config.name);
    d.metrics.connectionOpened('inbound');
    socket.once('close', () => d.metrics.connectionClosed('inbound'));
    socket.setNoDelay(true);
    d.log.debug({ listener: this.config.name, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'inbound plaintext connection (unauthenticated)');
    if (this.config.protocol === 'tcp') this.#tcp(socket, null);
    else this.#http(socket, null, d.identity.current!);
  }

  #onConnection(socket: tls.TLSSocket): void {
    const admitted = this.#gate.admit(socket);
    if (!admitted) return;
    if (this.config.protocol === 'tcp') {
      this.#tcp(socket, admitted.peer);
      return;
    }
    this.#http(socket, admitted.peer, admitted.snapshot);
  }

  /** `peer` null: a plaintext caller (permissive listener). */
  #tcp(socket: net.Socket, peer: VerifiedPeer | null): void {
    const d = this.#d;
    const start = d.nowMs();
    const requestId = d.requestId();
    const decision = this.#gate.decide(peer, this.#port, 'tcp');
    const who = peer?.idText ?? UNAUTHENTICATED;
    const conn = connectionFields(socket);
    const log = (status: number, bytesIn: number, bytesOut: number, error?: string) => {
      d.metrics.request('inbound', 'tcp', status, (d.nowMs() - start) / 1000, this.config.name, who);
      if (d.accessLog.enabled) d.accessLog.write({ requestId, direction: 'inbound', protocol: 'tcp', peer: who, decision: decision.allowed ? 'allow' : 'deny', policy: decision.policy, bytesIn, bytesOut, durationMs: d.nowMs() - start, upstream: `${this.config.forwardTo.host}:${this.config.forwardTo.port}`, ...conn, ...(error ? { error } : {}) });
    };
    if (!decision.allowed) {
      socket.destroy(); // closed before any byte reaches the app
      log(403, 0, 0, 'authz_denied');
      return;
    }
    // As on the outbound twin: a plaintext socket (permissive) has no other 'error' listener until relay() runs,
    // and a reset while the app connection is pending would otherwise be an uncaught exception.
    socket.once('error', () => socket.destroy());
    socket.pause();
    const app = net.connect({ host: this.config.forwardTo.host, port: this.config.forwardTo.port, allowHalfOpen: true, noDelay: true });
    this.#sessions.addSocket(socket);
    if (peer) this.#sessions.setPeer(socket, peer);
    app.once('connect', () => {
      // The caller left while the app connection was pending: relay() would wait for a 'close' already emitted.
      if (socket.destroyed) {
        app.destroy();
        return;
      }
      socket.resume();
      relay(socket, app, d.limits.idleTimeoutMs, (r) => log(r.error ? 502 : 200, r.bytesIn, r.bytesOut, r.error));
    });
    app.once('error', (e) => {
      if (app.connecting) {
        socket.destroy();
        log(502, 0, 0, 'upstream_unavailable');
        d.log.warn({ listener: this.config.name, err: e.message }, 'app connection failed');
      }
    });
  }

  /** `peer` null: a plaintext caller (permissive listener): judged as unauthenticated and given no XFCC. */
  #http(socket: net.Socket, peer: VerifiedPeer | null, snapshot: IdentitySnapshot): void {
    const d = this.#d;
    // Any XFCC the caller sent is stripped either way; only a verified peer gets one added.
    const xfcc = peer ? `x-forwarded-client-cert: By=${snapshot.id};URI=${peer.idText};Hash=${peer.leafHash}\r\n` : '';
    const who = peer?.idText ?? UNAUTHENTICATED;
    const conn = connectionFields(socket);
    const upstream = `${this.config.forwardTo.host}:${this.config.forwardTo.port}`;
    const session = new Http1Session(socket, {
      limits: d.limits,
      responseLimits: { maxHeaderBytes: 65_536, maxHeaders: 200 },
      pool: this.#pool,
      nowMs: d.nowMs,
      hooks: {
        plan: (head: HttpHead): RequestPlan & { context: InboundContext } => {
          const requestId = d.requestId();
          const path = head.target!;
          const decision = this.#gate.decide(peer, this.#port, 'http', head.method, path);
          const span = d.tracer?.start(`${head.method} inbound`, 'inbound', headerValue(head, 'traceparent'), { 'tessera.peer': who, 'tessera.request_id': requestId });
          const context = { requestId, decision, span, path };
          if (!decision.allowed) return { forward: false, status: 403, code: 'authz_denied', context };
          const add = span ? `${xfcc}traceparent: ${span.traceparent}\r\n` : xfcc;
          // The app gets the path the policy decided on (allowed implies it normalizes), not the raw one.
          const target = normalizeRequestTarget(path) ?? path;
          return { forward: true, strip: span ? STRIP_TRACE : STRIP_INBOUND, add, context, ...(target !== path ? { target } : {}) };
        },
        done: (r: ExchangeRecord, ctx: unknown) => {
          const c = ctx as InboundContext;
          const ms = r.endMs - r.startMs;
          d.metrics.request('inbound', 'http', r.status, ms / 1000, this.config.name, who);
          c.span?.end({ 'http.status_code': r.status, 'tessera.decision': c.decision.allowed ? 'allow' : 'deny', 'tessera.upstream': upstream }, r.error);
          if (d.accessLog.enabled) d.accessLog.write({ requestId: c.requestId, direction: 'inbound', protocol: 'http', peer: who, method: r.method, path: c.path, status: r.status, decision: c.decision.allowed ? 'allow' : 'deny', policy: c.decision.policy, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: ms, upstream, ...conn, ...(r.error ? { error: r.error } : {}), ...(c.span ? { traceId: c.span.traceparent.slice(3, 35) } : {}) });
        },
        rejected: (reason: string) => d.metrics.rejected('inbound', reason),
      },
    });
    this.#sessions.add(socket, session);
    if (peer) this.#sessions.setPeer(socket, peer);
  }
}

/** Access-log fields of the connection: `resumed` for TLS; for plaintext the caller's IP (no SPIFFE ID names it). */
function connectionFields(socket: net.Socket): { resumed?: boolean; clientIp?: string } {
  if (socket instanceof tls.TLSSocket) return { resumed: socket.isSessionReused() };
  return socket.remoteAddress ? { clientIp: socket.remoteAddress } : {};
}

const STRIP_TRACE: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'traceparent']);
