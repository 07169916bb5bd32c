// The outbound listener for HTTP/2 and gRPC: the app speaks h2c (prior knowledge, as gRPC clients do) to a
// loopback port; every stream is multiplexed over one long-lived mTLS HTTP/2 session to the upstream proxy,
// which must present exactly the configured SPIFFE ID.
import * as http2 from 'node:http2';
import type { OutboundConfig } from '../config/proxy-config.js';
import { forwardStream, refuseFragment, requestHeaders } from '../h2/h2-forward.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import { mtlsConnect, type SessionMemory } from '../upstream/connectors.js';
import { h2ServerOptions, watchH2Session } from './h2-server-limits.js';
import { listenOn } from './listen.js';
import type { ListenerDeps } from './listener-deps.js';
import { SessionSet } from './session-set.js';
import type { Listener } from './listener.js';

const STRIP_TRACE: ReadonlySet<string> = new Set(['traceparent']);
const NONE: ReadonlySet<string> = new Set();

export class OutboundH2Listener implements Listener {
  readonly kind = 'outbound' as const;
  readonly config: OutboundConfig;
  readonly #d: ListenerDeps;
  readonly #server: http2.Http2Server;
  readonly #upstream: H2Upstream;
  readonly #sessions: SessionSet;
  #port = 0;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    const target = { host: config.upstream.host, port: config.upstream.port, expectedId: config.spiffeId, alpn: ['h2'] };
    const mtls = { identity: deps.identity, contexts: deps.clientContexts, verifier: new PeerVerifier(), denyList: deps.denyList, metrics: deps.metrics, nowMs: deps.nowMs, handshakeTimeoutMs: deps.limits.handshakeTimeoutMs, direction: 'outbound' };
    const ticket: SessionMemory = {};
    this.#upstream = new H2Upstream({
      authority: `https://${config.upstream.host}:${config.upstream.port}`,
      open: (done) =>
        mtlsConnect(target, mtls, ticket, (err, socket) => {
          if (err || !socket) return done(err ?? new Error('connect failed'));
          if (socket.alpnProtocol !== 'h2') {
            socket.destroy();
            return done(new Error(`upstream ${target.host}:${target.port} did not negotiate h2`));
          }
          done(null, socket);
        }),
    });
    this.#server = http2.createServer(h2ServerOptions(deps.limits, 64));
    this.#sessions = new SessionSet(deps.nowMs, () => undefined);
    this.#server.maxConnections = deps.limits.maxConnections;
    this.#server.setTimeout(deps.limits.idleTimeoutMs);
    this.#server.on('session', (s) => {
      watchH2Session(this.#sessions, s, deps.limits, deps.nowMs, (code) => deps.metrics.rejected('outbound', code));
      deps.metrics.connectionOpened('outbound');
      s.once('close', () => deps.metrics.connectionClosed('outbound'));
      s.on('error', () => undefined);
    });
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, this.config.listen, () => this.#d.metrics.rejected('outbound', 'too_many_connections'));
    this.#sessions.start();
    return { host: this.config.listen.host, port: this.#port };
  }

  get port(): number {
    return this.#port;
  }

  idle(): Promise<void> {
    return this.#sessions.idle();
  }

  get openConnections(): number {
    return this.#sessions.size;
  }

  drain(): void {
    this.#server.close();
    this.#sessions.drain();
  }

  close(): void {
    this.#sessions.destroyAll();
    this.#upstream.close();
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const d = this.#d;
    const grpc = this.config.protocol === 'grpc' || String(headers['content-type'] ?? '').startsWith('application/grpc');
    const protocol = grpc ? 'grpc' : 'http2';
    const start = d.nowMs();
    const requestId = d.requestId();
    const method = String(headers[':method'] ?? '');
    const path = String(headers[':path'] ?? '');
    if (refuseFragment(stream, path, grpc)) return void d.metrics.rejected('outbound', 'bad_request');
    const peer = this.config.spiffeId.toString();
    const span = d.tracer?.start(`${method} outbound`, 'outbound', headers.traceparent as string | undefined, { 'tessera.peer': peer, 'tessera.request_id': requestId });
    const out = requestHeaders(headers, span ? STRIP_TRACE : NONE, span ? { traceparent: span.traceparent } : {});
    out[':scheme'] = 'https';
    forwardStream(stream, out, this.#upstream, grpc, d.limits.requestTimeoutMs, (r) => {
      const ms = d.nowMs() - start;
      const code = grpc ? (r.grpcStatus ?? 'none') : String(r.status);
      d.metrics.request('outbound', protocol, code, ms / 1000, this.config.name, peer);
      span?.end({ 'http.status_code': r.status, 'tessera.upstream': `${this.config.upstream.host}:${this.config.upstream.port}` }, r.error);
      if (d.accessLog.enabled) d.accessLog.write({ requestId, direction: 'outbound', protocol, peer, method, path, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: ms, upstream: `${this.config.upstream.host}:${this.config.upstream.port}`, ...(r.error ? { error: r.error } : {}), ...(span ? { traceId: span.traceparent.slice(3, 35) } : {}) });
    });
  }
}
