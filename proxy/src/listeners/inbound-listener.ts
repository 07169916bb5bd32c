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
import type { ByteSocket } from '../http1/byte-socket.js';
import type { HttpHead } from '../http1/http1-head.js';
import type { ExchangeRecord, RequestPlan } from '../http1/http1-session-types.js';
import { MUX_ALPN } from '../mux/mux-frame.js';
import { MuxSession } from '../mux/mux-session.js';
import { sessionUpkeep } from '../mux/session-upkeep.js';
import { verdictOf } from '../telemetry/exchange-recorder.js';
import { incomingTraceOf, traceLines } from '../telemetry/trace-headers.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import type { VerifiedPeer } from '../tls/peer-verify.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { plainConnector } from '../upstream/connectors.js';
import { APP_RESPONSE_DROP, CALLER_REQUEST_DROP, CALLER_REQUEST_DROP_TRACED, UNAUTHENTICATED_CALLER_DROP, UNAUTHENTICATED_CALLER_DROP_TRACED } from './app-owned-fields.js';
import { ResetBudget } from './h2-reset-budget.js';
import { InboundTls } from './inbound-tls.js';
import type { ListenerDeps } from './listener-deps.js';
import { countConnection, ServedListener } from './served-listener.js';
import { resetSocket } from './socket-reset.js';
import { relay, tunnelStatus } from './tcp-relay.js';
import { sniffFirstBytes } from './tls-sniff.js';


interface InboundContext {
  readonly requestId: string;
  readonly decision: Decision;
  readonly span: RequestSpan | undefined;
  readonly path: string;
}

export class InboundListener extends ServedListener<InboundConfig> {
  readonly #tls: InboundTls;
  readonly #server: tls.Server;
  readonly #pool: ConnectionPool;
  readonly #upstream: string;

  constructor(config: InboundConfig, deps: ListenerDeps) {
    const tcp = config.protocol === 'tcp';
    const inboundTls = new InboundTls(config, deps, tcp ? [] : deps.transport.multiplex ? [MUX_ALPN, 'http/1.1'] : ['http/1.1']);
    // Half-open only after the handshake (#tcp): a half-open TLS server takes a peer's FIN mid-handshake for a
    // half-close and waits out the handshake timeout, counted `timeout`, instead of seeing it leave (audit 35a F1).
    const server = tls.createServer({ ...inboundTls.serverOptions(), allowHalfOpen: false });
    // Permissive: a front accepts, reads the first bytes, then hands TLS to the TLS server and plaintext to us.
    const front = config.mtls === 'permissive' ? net.createServer({ allowHalfOpen: tcp }) : null;
    const pool = new ConnectionPool({
      connect: plainConnector(config.forwardTo.host, config.forwardTo.port, deps.limits.handshakeTimeoutMs, () => deps.metrics.upstreamConnectionOpened('inbound')),
      maxConnections: deps.limits.upstreamPoolSize,
      maxQueue: deps.limits.maxConnections,
      idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
      maxRequests: deps.limits.upstreamMaxRequests,
      nowMs: deps.nowMs,
      timers: deps.timers,
    });
    super('inbound', config, deps, front ?? server, () => pool.sweep());
    this.#tls = inboundTls;
    this.#server = server;
    this.#pool = pool;
    this.#upstream = `${config.forwardTo.host}:${config.forwardTo.port}`;
    this.onClose(inboundTls.attach(server, front ?? server, this.sessions));
    if (front) this.#servePermissive(front);
    this.onClose(() => pool.close());
    server.on('secureConnection', (s: tls.TLSSocket) => this.#onConnection(s));
  }

  rotateTicketKeys(): void {
    this.#tls.rotateTicketKeys();
  }

  #servePermissive(front: net.Server): void {
    /** Connections whose first bytes have not arrived yet (cut by close()). */
    const sniffing = new Set<net.Socket>();
    this.onClose(() => {
      for (const s of sniffing) s.destroy();
    });
    front.on('connection', (socket: net.Socket) => {
      sniffing.add(socket);
      // Bounded by the handshake timeout: a peer that sends nothing costs no more here than in a stalled handshake.
      sniffFirstBytes(socket, this.d.limits.handshakeTimeoutMs, this.d.timers, (r) => {
        sniffing.delete(socket);
        if (r === 'tls') this.#server.emit('connection', socket);
        else if (r === 'plaintext') this.#onPlaintext(socket);
        else if (r === 'timeout') this.d.metrics.handshake('inbound', false, 'timeout', false);
      });
    });
  }

  /** A plaintext caller on a permissive listener: no SVID, so no peer identity, no XFCC, no deny-list entry. */
  #onPlaintext(socket: net.Socket): void {
    const d = this.d;
    d.metrics.plaintextConnection(this.config.name);
    countConnection(d, 'inbound', socket);
    socket.setNoDelay(true);
    d.log.debug({ listener: this.config.name, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'inbound plaintext connection (unauthenticated)');
    if (this.config.protocol === 'tcp') this.#tcp(socket, null);
    else this.#http(socket, null, '');
  }

  #onConnection(socket: tls.TLSSocket): void {
    // A TCP tunnel carries half-closes from here on (set in the handshake's own event, before any later read).
    if (this.config.protocol === 'tcp') socket.allowHalfOpen = true;
    const admitted = this.#tls.admit(socket);
    if (!admitted) return;
    const xfcc = `x-forwarded-client-cert: ${admitted.xfcc}\r\n`;
    if (this.config.protocol === 'tcp') this.#tcp(socket, admitted.peer);
    else if (socket.alpnProtocol === MUX_ALPN) this.#mux(socket, admitted.peer, xfcc);
    else this.#http(socket, admitted.peer, xfcc);
  }

  /**
   * A peer proxy's multiplexed session: each stream is served as one HTTP/1.1 connection of that peer, with the
   * per-request authorization, XFCC, tracing and access log of any other. The TLS connection is what the sweep
   * keeps alive and expires, drain sends GOAWAY on, and a ban of the peer closes (its streams with it).
   */
  #mux(socket: tls.TLSSocket, peer: VerifiedPeer, xfcc: string): void {
    const d = this.d;
    const m = d.metrics.mux;
    // The peer's early cancellations, as an inbound HTTP/2 session's are counted (h2-reset-budget.ts): past the
    // allowance the session is drained and `premature_reset` counted. Reset at a rate under the flood budget, 19,000
    // streams a session reached the app uncounted, 100 at a time (audit 62g F1).
    const resets = new ResetBudget(d.limits.maxConcurrentStreams, 'drain');
    const session = new MuxSession(socket, {
      role: 'server',
      nowMs: d.nowMs,
      maxStreams: d.limits.maxConcurrentStreams,
      keepaliveIntervalMs: d.transport.keepaliveIntervalMs,
      keepaliveTimeoutMs: d.transport.keepaliveTimeoutMs,
      onStream: (stream) => {
        m.streamOpened('inbound');
        const openedMs = d.nowMs();
        stream.once('close', () => {
          if (!stream.resetByPeer || session.draining || !resets.closed(stream.wrote, d.nowMs() - openedMs)) return;
          d.metrics.rejected('inbound', 'premature_reset');
          session.drain();
        });
        this.#http(stream, peer, xfcc, socket, (drain) => session.whenGoAwaySeen(drain));
      },
      onEnd: (reason) => m.sessionEnded('inbound', reason),
      onWrite: () => m.tlsWrite('inbound'),
      onRead: () => m.tlsRead('inbound'),
    });
    m.sessionOpened('inbound');
    this.sessions.add(socket, sessionUpkeep(session, d.limits.idleTimeoutMs, d.nowMs() + d.transport.keepaliveIntervalMs));
    this.sessions.setPeer(socket, peer);
  }

  /** `peer` null: a plaintext caller (permissive listener). */
  #tcp(socket: net.Socket, peer: VerifiedPeer | null): void {
    const d = this.d;
    const start = d.nowMs();
    const requestId = d.requestId();
    const decision = this.#tls.gate.decide(peer, this.port, 'tcp');
    const who = peer?.idText ?? UNAUTHENTICATED;
    const conn = connectionFields(socket);
    let recorded = () => {};
    const log = (status: number, bytesIn: number, bytesOut: number, error?: string) => {
      this.exchanges.record({ direction: 'inbound', protocol: 'tcp', listener: this.config.name, requestId, peer: who, status, ...verdictOf(decision), bytesIn, bytesOut, durationMs: d.nowMs() - start, upstream: decision.allowed ? this.#upstream : undefined, ...conn, ...(error ? { error } : {}), ...this.sessions.drainCuts.flag(socket) });
      recorded();
    };
    if (!decision.allowed) {
      socket.destroy(); // closed before any byte reaches the app
      log(403, 0, 0, 'authz_denied');
      return;
    }
    // As on the outbound twin: a plaintext socket (permissive) has no other 'error' listener until relay() runs,
    // and a reset while the app connection is pending would otherwise be an uncaught exception.
    let reset = false;
    socket.once('error', () => {
      reset = true;
      socket.destroy();
    });
    socket.pause();
    const app = net.connect({ host: this.config.forwardTo.host, port: this.config.forwardTo.port, allowHalfOpen: true, noDelay: true });
    this.sessions.addSocket(socket);
    recorded = this.sessions.tunnel(socket);
    if (peer) this.sessions.setPeer(socket, peer);
    let appConnected = false;
    app.once('connect', () => {
      appConnected = true;
      d.metrics.upstreamConnectionOpened('inbound');
      // The caller left while the app connection was pending: relay() would wait for a 'close' already emitted. Its
      // reset goes on to the app as a reset, and the tunnel is counted and logged (499), as its caller's proxy does.
      // Destroyed otherwise, it was cut here (the drain deadline, a ban: allowHalfOpen keeps a caller's FIN from
      // destroying it): a reset too, not a FIN the app would read as an empty upload.
      if (socket.destroyed) {
        const error = reset ? 'downstream_reset' : undefined;
        resetSocket(app);
        log(tunnelStatus(error), 0, 0, error);
        return;
      }
      socket.resume();
      relay(socket, app, d.limits.idleTimeoutMs, (r) => log(tunnelStatus(r.error), r.bytesIn, r.bytesOut, r.error));
    });
    app.once('error', (e) => {
      // Not app.connecting: Node clears it before it reports a failed connect, so that test never held and a tunnel
      // to an app that was down stayed open, uncounted, until its caller gave up (audit 55b F2).
      if (!appConnected) {
        // A reset, not a close: the caller's proxy then counts its tunnel 502 and resets its own client, which would
        // otherwise read a clean, empty EOF as the app's answer (audit 55b F2).
        resetSocket(socket);
        log(502, 0, 0, 'upstream_unavailable');
        d.log.warn({ listener: this.config.name, err: e.message }, 'app connection failed');
      }
    });
  }

  /**
   * `peer` null: a plaintext caller (permissive listener): judged as unauthenticated and given no XFCC.
   * `xfcc`: the header line added for a verified peer; any XFCC the caller sent is stripped either way.
   */
  #http(socket: ByteSocket, peer: VerifiedPeer | null, xfcc: string, conn: net.Socket = socket as net.Socket, drainVia?: (drain: () => void) => void): void {
    const d = this.d;
    const who = peer?.idText ?? UNAUTHENTICATED;
    const { resumed, clientIp } = connectionFields(conn);
    this.serveHttp1(socket, this.#pool, {
      plan: (head: HttpHead): RequestPlan & { context: InboundContext } => {
        const requestId = d.requestId();
        const path = head.target!;
        const decision = this.#tls.gate.decide(peer, this.port, 'http', head.method, path);
        const span = d.tracer?.start(head.method!, 'inbound', incomingTraceOf(head), { 'tessera.peer': who, 'tessera.request_id': requestId });
        const context = { requestId, decision, span, path };
        if (!decision.allowed) return { forward: false, status: 403, code: 'authz_denied', context };
        const add = span ? xfcc + traceLines(span) : xfcc;
        // The app gets the path the policy decided on (allowed implies it normalizes), not the raw one.
        const target = normalizeRequestTarget(path) ?? path;
        // An upgrade (WebSocket) is allowed like any request: it was authorized above, XFCC included.
        const strip = peer ? (span ? CALLER_REQUEST_DROP_TRACED : CALLER_REQUEST_DROP) : span ? UNAUTHENTICATED_CALLER_DROP_TRACED : UNAUTHENTICATED_CALLER_DROP;
        return { forward: true, upgrade: true, strip, dropResponse: APP_RESPONSE_DROP, add, context, target: target !== path ? target : undefined };
      },
      done: (r: ExchangeRecord, ctx: unknown) => {
        const c = ctx as InboundContext;
        const v = verdictOf(c.decision);
        // One literal, no spreads (per request); undefined fields are absent from the record.
        this.exchanges.record({ direction: 'inbound', protocol: 'http', listener: this.config.name, requestId: c.requestId, peer: who, method: r.method, path: c.path, status: r.status, decision: v.decision, policy: v.policy, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: r.endMs - r.startMs, endMs: r.endMs, upstream: c.decision.allowed ? this.#upstream : undefined, resumed, clientIp, error: r.error, responseFlags: r.responseFlags, span: c.span });
      },
      },
      drainVia,
    );
    // A stream of a multiplexed session is named too: a peer that no longer stands loses its open streams as well.
    if (peer) this.sessions.setPeer(socket, peer, socket !== conn);
  }
}

/** Access-log fields of the connection: `resumed` for TLS; for plaintext the caller's IP (no SPIFFE ID names it). */
function connectionFields(socket: net.Socket): { resumed?: boolean; clientIp?: string } {
  if (socket instanceof tls.TLSSocket) return { resumed: socket.isSessionReused() };
  return socket.remoteAddress ? { clientIp: socket.remoteAddress } : {};
}
