// The outbound listener: the app speaks plaintext to a loopback port, the proxy carries it to the upstream proxy
// over pooled, long-lived mTLS connections and checks that the upstream presents exactly the configured SPIFFE
// ID (secure naming). HTTP/1.1 goes through the lean forwarder; TCP gets one mTLS connection per connection.
import * as net from 'node:net';
import type { OutboundConfig } from '../config/proxy-config.js';
import { type HttpHead, headerValue } from '../http1/http1-head.js';
import type { ExchangeRecord, RequestPlan } from '../http1/http1-session-types.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import { ConnectionPool } from '../upstream/connection-pool.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, mtlsConnector, type SessionMemory } from '../upstream/connectors.js';
import type { ListenerDeps } from './listener-deps.js';
import { outboundMtls, outboundTarget, staticRoute } from './outbound-mtls.js';
import { ServedListener } from './served-listener.js';
import { relay } from './tcp-relay.js';

interface OutboundContext {
  readonly requestId: string;
  readonly span: RequestSpan | undefined;
  readonly path: string;
}

const STRIP_TRACE: ReadonlySet<string> = new Set(['traceparent']);

export class OutboundListener extends ServedListener<OutboundConfig> {
  readonly #pool: ConnectionPool;
  readonly #mtls: MtlsDeps;
  readonly #target: MtlsTarget;
  readonly #tcpSession: SessionMemory = {};
  readonly #upstream: string;
  readonly #peer: string;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    const tcp = config.protocol === 'tcp';
    const mtls = outboundMtls(deps);
    const target = outboundTarget(config, tcp ? [] : ['http/1.1'], tcp);
    const pool = new ConnectionPool({
      connect: mtlsConnector(target, mtls),
      maxConnections: deps.limits.upstreamPoolSize,
      maxQueue: deps.limits.maxConnections,
      idleTimeoutMs: deps.limits.upstreamIdleTimeoutMs,
      nowMs: deps.nowMs,
    });
    const server = net.createServer({ allowHalfOpen: tcp, noDelay: true });
    super('outbound', config, deps, server, () => pool.sweep());
    this.#mtls = mtls;
    this.#target = target;
    this.#pool = pool;
    this.#upstream = `${staticRoute(config).upstream.host}:${staticRoute(config).upstream.port}`;
    this.#peer = staticRoute(config).spiffeId.toString();
    this.onClose(() => pool.close());
    server.on('connection', (s: net.Socket) => this.#onConnection(s));
  }

  /** Upstream pool state, for /config and tests. */
  get poolStats(): { open: number; idle: number; queued: number } {
    return this.#pool.stats;
  }

  #onConnection(socket: net.Socket): void {
    this.countConnection(socket);
    if (this.config.protocol === 'tcp') this.#tcp(socket);
    else this.#http(socket);
  }

  #http(socket: net.Socket): void {
    const d = this.d;
    const peer = this.#peer;
    this.serveHttp1(socket, this.#pool, {
      plan: (head: HttpHead): RequestPlan & { context: OutboundContext } => {
        const requestId = d.requestId();
        const span = d.tracer?.start(`${head.method} outbound`, 'outbound', headerValue(head, 'traceparent'), { 'tessera.peer': peer, 'tessera.request_id': requestId });
        const context = { requestId, span, path: head.target! };
        if (!d.identity.current) return { forward: false, status: 503, code: 'not_ready', context };
        return span ? { forward: true, upgrade: true, strip: STRIP_TRACE, add: `traceparent: ${span.traceparent}\r\n`, context } : { forward: true, upgrade: true, add: '', context };
      },
      done: (r: ExchangeRecord, ctx: unknown) => {
        const c = ctx as OutboundContext;
        this.exchanges.record({ direction: 'outbound', protocol: 'http', listener: this.config.name, requestId: c.requestId, peer, method: r.method, path: c.path, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: r.endMs - r.startMs, upstream: this.#upstream, resumed: r.upstreamResumed ?? false, error: r.error, responseFlags: r.responseFlags, span: c.span });
      },
    });
  }

  #tcp(socket: net.Socket): void {
    const d = this.d;
    const start = d.nowMs();
    const requestId = d.requestId();
    socket.pause();
    this.sessions.addSocket(socket);
    const log = (status: number, bytesIn: number, bytesOut: number, resumed: boolean, error?: string) => {
      this.exchanges.record({ direction: 'outbound', protocol: 'tcp', listener: this.config.name, requestId, peer: this.#peer, status, bytesIn, bytesOut, durationMs: d.nowMs() - start, upstream: this.#upstream, resumed, ...(error ? { error } : {}) });
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
