// The outbound listener: the app speaks plaintext to a loopback port, the proxy carries it to the upstream proxy
// over pooled, long-lived mTLS connections and checks that the upstream presents exactly the configured SPIFFE
// ID (secure naming). HTTP/1.1 goes through the lean forwarder; TCP gets one mTLS connection per connection.
import * as net from 'node:net';
import { headerValue } from '../http1/http1-head.js';
import type { HttpHead } from '../http1/http1-head.js';
import { Http1Session } from '../http1/http1-session.js';
import type { ExchangeRecord, RequestPlan } from '../http1/http1-session-types.js';
import type { OutboundConfig } from '../config/proxy-config.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { type MtlsDeps, mtlsConnect, mtlsConnector, type SessionMemory } from '../upstream/connectors.js';
import { listenOn } from './listen.js';
import type { ListenerDeps } from './listener-deps.js';
import { SessionSet } from './session-set.js';
import { relay } from './tcp-relay.js';
import type { Listener } from './listener.js';

interface OutboundContext {
  readonly requestId: string;
  readonly span: RequestSpan | undefined;
  readonly path: string;
}

const STRIP_TRACE: ReadonlySet<string> = new Set(['traceparent']);

export class OutboundListener implements Listener {
  readonly kind = 'outbound' as const;
  readonly config: OutboundConfig;
  readonly #d: ListenerDeps;
  readonly #server: net.Server;
  readonly #pool: ConnectionPool;
  readonly #sessions: SessionSet;
  readonly #mtls: MtlsDeps;
  readonly #target;
  readonly #tcpSession: SessionMemory = {};
  #port = 0;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    this.#mtls = {
      identity: deps.identity,
      contexts: deps.clientContexts,
      verifier: new PeerVerifier(),
      denyList: deps.denyList,
      metrics: deps.metrics,
      nowMs: deps.nowMs,
      handshakeTimeoutMs: deps.limits.handshakeTimeoutMs,
      direction: 'outbound',
    };
    const tcp = config.protocol === 'tcp';
    this.#target = { host: config.upstream.host, port: config.upstream.port, expectedId: config.spiffeId, alpn: tcp ? [] : ['http/1.1'], allowHalfOpen: tcp };
    this.#pool = new ConnectionPool({
      connect: mtlsConnector(this.#target, this.#mtls),
      maxConnections: deps.limits.upstreamPoolSize,
      maxQueue: deps.limits.maxConnections,
      idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
      nowMs: deps.nowMs,
    });
    this.#sessions = new SessionSet(deps.nowMs, () => this.#pool.sweep());
    this.#server = net.createServer({ allowHalfOpen: tcp, noDelay: true }, (s) => this.#onConnection(s));
    this.#server.maxConnections = deps.limits.maxConnections;
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, this.config.listen, () => this.#d.metrics.rejected('outbound', 'too_many_connections'));
    this.#sessions.start();
    return { host: this.config.listen.host, port: this.#port };
  }

  get port(): number {
    return this.#port;
  }

  drain(): void {
    this.#server.close();
    this.#sessions.drain();
  }

  close(): void {
    this.#sessions.destroyAll();
    this.#pool.close();
  }

  idle(): Promise<void> {
    return this.#sessions.idle();
  }

  get openConnections(): number {
    return this.#sessions.size;
  }

  /** Upstream pool state, for /config and tests. */
  get poolStats(): { open: number; idle: number; queued: number } {
    return this.#pool.stats;
  }

  #onConnection(socket: net.Socket): void {
    const d = this.#d;
    d.metrics.connectionOpened('outbound');
    socket.once('close', () => d.metrics.connectionClosed('outbound'));
    if (this.config.protocol === 'tcp') {
      this.#tcp(socket);
      return;
    }
    const upstream = `${this.config.upstream.host}:${this.config.upstream.port}`;
    const peer = this.config.spiffeId.toString();
    const session = new Http1Session(socket, {
      limits: d.limits,
      responseLimits: { maxHeaderBytes: 65_536, maxHeaders: 200 },
      pool: this.#pool,
      nowMs: d.nowMs,
      hooks: {
        plan: (head: HttpHead): RequestPlan & { context: OutboundContext } => {
          const requestId = d.requestId();
          const span = d.tracer?.start(`${head.method} outbound`, 'outbound', headerValue(head, 'traceparent'), { 'tessera.peer': peer, 'tessera.request_id': requestId });
          const context = { requestId, span, path: head.target! };
          if (!d.identity.current) return { forward: false, status: 503, code: 'not_ready', context };
          return span ? { forward: true, strip: STRIP_TRACE, add: `traceparent: ${span.traceparent}\r\n`, context } : { forward: true, add: '', context };
        },
        done: (r: ExchangeRecord, ctx: unknown) => {
          const c = ctx as OutboundContext;
          const ms = r.endMs - r.startMs;
          d.metrics.request('outbound', 'http', r.status, ms / 1000, this.config.name, peer);
          c.span?.end({ 'http.status_code': r.status, 'tessera.upstream': upstream }, r.error);
          if (d.accessLog.enabled) d.accessLog.write({ requestId: c.requestId, direction: 'outbound', protocol: 'http', peer, method: r.method, path: c.path, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: ms, upstream, resumed: r.upstreamResumed ?? false, ...(r.error ? { error: r.error } : {}), ...(c.span ? { traceId: c.span.traceparent.slice(3, 35) } : {}) });
        },
        rejected: (reason: string) => d.metrics.rejected('outbound', reason),
      },
    });
    this.#sessions.add(socket, session);
  }

  #tcp(socket: net.Socket): void {
    const d = this.#d;
    const start = d.nowMs();
    const requestId = d.requestId();
    const upstream = `${this.config.upstream.host}:${this.config.upstream.port}`;
    socket.pause();
    this.#sessions.addSocket(socket);
    const log = (status: number, bytesIn: number, bytesOut: number, resumed: boolean, error?: string) => {
      d.metrics.request('outbound', 'tcp', status, (d.nowMs() - start) / 1000, this.config.name, this.config.spiffeId.toString());
      if (d.accessLog.enabled) d.accessLog.write({ requestId, direction: 'outbound', protocol: 'tcp', peer: this.config.spiffeId.toString(), bytesIn, bytesOut, durationMs: d.nowMs() - start, upstream, resumed, ...(error ? { error } : {}) });
    };
    socket.once('error', () => socket.destroy());
    mtlsConnect(this.#target, this.#mtls, this.#tcpSession, (err, up, resumed) => {
      if (err || !up) {
        socket.destroy();
        return log(502, 0, 0, false, 'upstream_unavailable');
      }
      if (socket.destroyed) {
        up.destroy();
        return;
      }
      socket.resume();
      relay(socket, up, d.limits.idleTimeoutMs, (r) => log(r.error ? 502 : 200, r.bytesIn, r.bytesOut, resumed ?? false, r.error));
    });
  }
}
