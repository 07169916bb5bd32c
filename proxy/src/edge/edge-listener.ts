// The edge listener: TLS for outside clients (HTTP/1.1 and HTTP/2 by ALPN, SNI certificates, optional client
// certificates), routing by host and path to mesh upstreams re-originated over mTLS with secure naming, forwarding
// headers from the real connection, optional HSTS, the same metrics, access log, tracing and drain as sidecars.
import { type IncomingHttpHeaders, type IncomingMessage, Agent as HttpAgent, type OutgoingHttpHeaders, type ServerResponse, request } from 'node:http';
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { evaluate } from '../../../common/policy/evaluate.js';
import type { EdgeConfig, EdgeRouteConfig } from '../config/edge-config.js';
import { listenOn } from '../listeners/listen.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import { PeerVerifier } from '../tls/peer-verify.js';
import { MtlsAgent } from '../upstream/mtls-agent.js';
import { type EdgeClient, edgeClient, xfccFor } from './client-identity.js';
import { EdgeCertificates } from './edge-certificates.js';
import { forwardedHeaders, trustedMatcher } from './forwarded-headers.js';
import { type EdgeRoute, normalizeHost, selectRoute } from './route-table.js';

type Req = IncomingMessage | http2.Http2ServerRequest;
type Res = ServerResponse | http2.Http2ServerResponse;

/** Connection-specific or ours to set: never copied from the client request. */
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'transfer-encoding', 'host', 'http2-settings', 'x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'traceparent']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

interface Upstream {
  readonly route: EdgeRouteConfig;
  readonly agent: HttpAgent;
  readonly label: string;
}

export class EdgeListener {
  readonly config: EdgeConfig;
  readonly #d: ListenerDeps;
  readonly #server: http2.Http2SecureServer;
  readonly #certs: EdgeCertificates;
  readonly #routes: EdgeRoute<Upstream>[];
  readonly #trusted: (ip: string) => boolean;
  readonly #sockets = new Map<TLSSocket, number>();
  readonly #clients = new Map<string, EdgeClient>();
  #draining = false;
  #port = 0;

  constructor(config: EdgeConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    this.#trusted = trustedMatcher(config.trustedProxies);
    this.#certs = new EdgeCertificates({
      defaultCert: { serverNames: ['*'], certFile: config.certFile, keyFile: config.keyFile },
      sni: config.certificates,
      ...(config.clientCa ? { clientCaFile: config.clientCa } : {}),
      tlsMinVersion: config.tlsMinVersion,
      onReload: (result, error) => deps.log[result === 'success' ? 'info' : 'warn']({ listener: config.name, result, err: error }, 'edge certificates reload'),
    });
    const mtls = { identity: deps.identity, contexts: deps.clientContexts, verifier: new PeerVerifier(), metrics: deps.metrics, nowMs: deps.nowMs, handshakeTimeoutMs: deps.limits.handshakeTimeoutMs, direction: 'edge' };
    const agentOpts = { maxSockets: deps.limits.upstreamPoolSize, timeout: deps.limits.upstreamIdleTimeoutMs };
    this.#routes = config.routes.map((route) => {
      const label = `${route.upstream.host}:${route.upstream.port}`;
      const agent = route.spiffeId ? new MtlsAgent({ host: route.upstream.host, port: route.upstream.port, expectedId: route.spiffeId, alpn: ['http/1.1'] }, mtls, agentOpts) : new HttpAgent({ keepAlive: true, ...agentOpts });
      if (route.unsafePlaintext) deps.log.warn({ listener: config.name, host: route.host, pathPrefix: route.pathPrefix, upstream: label }, 'edge route to a PLAINTEXT upstream (unsafePlaintext: true)');
      return { host: route.host, pathPrefix: route.pathPrefix, upstream: { route, agent, label } };
    });
    this.#server = http2.createSecureServer({
      ...this.#certs.defaultOptions,
      SNICallback: this.#certs.sniCallback,
      allowHTTP1: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      requestCert: config.clientCa !== undefined,
      rejectUnauthorized: config.clientCa !== undefined && config.clientCert === 'required',
      handshakeTimeout: deps.limits.handshakeTimeoutMs,
      maxSessionMemory: 32,
      maxHeaderListPairs: deps.limits.maxHeaders,
      settings: { maxHeaderListSize: deps.limits.maxHeaderBytes, enablePush: false },
    });
    this.#server.maxConnections = deps.limits.maxConnections;
    this.#server.setTimeout(deps.limits.idleTimeoutMs);
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      deps.metrics.handshake('edge', true, 'none', socket.isSessionReused());
      deps.metrics.connectionOpened('edge');
      this.#sockets.set(socket, 0);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        deps.metrics.connectionClosed('edge');
      });
    });
    this.#server.on('tlsClientError', (err) => deps.metrics.handshake('edge', false, classifyTlsError(err), false));
    this.#server.on('request', (req: Req, res: Res) => this.#onRequest(req, res));
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, this.config.listen);
    this.#certs.start((opts) => this.#server.setSecureContext(opts));
    return { host: this.config.listen.host, port: this.#port };
  }

  get port(): number {
    return this.#port;
  }

  get openConnections(): number {
    return this.#sockets.size;
  }

  drain(): void {
    this.#draining = true;
    this.#server.close();
    for (const [socket, active] of this.#sockets) {
      if (active === 0 && socket.alpnProtocol !== 'h2') socket.end();
    }
  }

  close(): void {
    this.#certs.stop();
    for (const socket of this.#sockets.keys()) socket.destroy();
    for (const r of this.#routes) r.upstream.agent.destroy();
  }

  /** The client's identity from its certificate (cached by fingerprint), null without one. */
  #client(req: Req): EdgeClient | null | 'invalid' {
    if (!this.config.clientCa) return null;
    const socket = req.socket as TLSSocket;
    const cert = socket.getPeerCertificate();
    if (!cert?.fingerprint256) return null;
    if (!socket.authorized) return 'invalid';
    let c = this.#clients.get(cert.fingerprint256);
    if (!c) {
      c = edgeClient(cert);
      if (this.#clients.size >= 1024) this.#clients.clear();
      this.#clients.set(cert.fingerprint256, c);
    }
    return c;
  }

  #onRequest(req: Req, res: Res): void {
    const d = this.#d;
    const start = d.nowMs();
    const requestId = d.requestId();
    const h2 = req.httpVersionMajor === 2;
    const protocol = h2 ? 'http2' : 'http';
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rawHost = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
    const host = normalizeHost(rawHost);
    const client = this.#client(req);
    const socket = req.socket as TLSSocket;
    if (!h2) this.#sockets.set(socket, (this.#sockets.get(socket) ?? 0) + 1);
    const span = d.tracer?.start(`${method} edge`, 'edge', req.headers.traceparent as string | undefined, { 'tessera.request_id': requestId, 'http.host': host });
    let upstreamLabel: string | undefined;
    let decisionText: string | undefined;
    let policy: string | null = null;
    let done = false;
    const finish = (status: number, bytesOut: number, error?: string) => {
      if (done) return;
      done = true;
      if (!h2) {
        const n = (this.#sockets.get(socket) ?? 1) - 1;
        this.#sockets.set(socket, n);
        if (this.#draining && n === 0) socket.end();
      }
      const ms = d.nowMs() - start;
      d.metrics.request('edge', protocol, status, ms / 1000);
      span?.end({ 'http.status_code': status, 'tessera.upstream': upstreamLabel }, error);
      if (d.accessLog.enabled) d.accessLog.write({ requestId, direction: 'edge', protocol, peer: client && client !== 'invalid' ? (client.spiffeId?.toString() ?? client.subject) : null, method, path, status, ...(decisionText ? { decision: decisionText, policy } : {}), bytesIn: Number(req.headers['content-length'] ?? 0), bytesOut, durationMs: ms, ...(upstreamLabel ? { upstream: upstreamLabel } : {}), resumed: socket.isSessionReused?.() ?? false, ...(error ? { error } : {}), ...(span ? { traceId: span.traceparent.slice(3, 35) } : {}) });
    };
    const local = (status: number, code: string) => {
      if (!res.headersSent) {
        (res as ServerResponse).writeHead(status, { 'content-type': 'text/plain', 'x-tessera-error': code, ...this.#hsts(), ...(this.#draining && !h2 ? { connection: 'close' } : {}) });
      }
      res.end(`${code}\n`);
      finish(status, 0, code);
    };
    if (client === 'invalid') {
      local(403, 'client_cert_invalid');
      return;
    }
    const route = selectRoute(this.#routes, host, path);
    if (!route) {
      local(404, 'no_route');
      return;
    }
    upstreamLabel = route.upstream.label;

    if (this.config.authorize) {
      const decision = evaluate(d.policies.current, { source: client?.spiffeId ?? null, destination: d.identity.current!.id, port: this.#port, method, path, protocol: 'http', nowMs: d.nowMs() });
      d.metrics.authzDecision(decision.allowed, decision.mode, decision.policy);
      decisionText = decision.allowed ? 'allow' : 'deny';
      policy = decision.policy;
      if (!decision.allowed) {
        local(403, 'authz_denied');
        return;
      }
    }

    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers as IncomingHttpHeaders)) {
      if (v === undefined || k.startsWith(':') || DROP_REQUEST.has(k)) continue;
      headers[k] = v;
    }
    headers.host = rawHost ?? host;
    Object.assign(
      headers,
      forwardedHeaders({
        remoteAddress: socket.remoteAddress ?? '',
        host,
        incomingXff: req.headers['x-forwarded-for'] as string | undefined,
        incomingForwarded: req.headers.forwarded as string | undefined,
        incomingProto: req.headers['x-forwarded-proto'] as string | undefined,
        trusted: this.#trusted(socket.remoteAddress ?? ''),
      }),
    );
    if (client) headers['x-forwarded-client-cert'] = xfccFor(d.identity.current!.id.toString(), client);
    if (span) headers.traceparent = span.traceparent;

    const up = route.upstream;
    const upReq = request({ agent: up.agent, host: up.route.upstream.host, port: up.route.upstream.port, method, path, headers, setHost: false });
    const timer = setTimeout(() => upReq.destroy(Object.assign(new Error('request timeout'), { code: 'request_timeout' })), d.limits.requestTimeoutMs);
    let bytesOut = 0;
    let upRes: IncomingMessage | undefined;
    upReq.on('response', (response) => {
      upRes = response;
      const out: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(response.headers)) if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v;
      Object.assign(out, this.#hsts());
      if (this.#draining && !h2) out.connection = 'close';
      (res as ServerResponse).writeHead(response.statusCode ?? 502, out);
      response.on('data', (c: Buffer) => {
        bytesOut += c.length;
      });
      response.pipe(res as NodeJS.WritableStream);
      response.on('end', () => {
        clearTimeout(timer);
        finish(response.statusCode ?? 502, bytesOut);
      });
      response.on('error', () => res.destroy());
    });
    upReq.on('error', (e: Error & { code?: string }) => {
      clearTimeout(timer);
      if (res.headersSent) {
        res.destroy();
        finish(502, bytesOut, 'upstream_reset');
      } else local(e.code === 'request_timeout' ? 504 : 502, e.code === 'request_timeout' ? 'request_timeout' : 'upstream_unavailable');
    });
    res.on('close', () => {
      if (done) return;
      clearTimeout(timer);
      finish(499, bytesOut, 'downstream_reset');
      // The client left. A request that went out whole lets its response drain so the pooled mTLS connection
      // survives (clients abort all the time); a half-sent one cannot be reused.
      if (!upReq.writableFinished) {
        upReq.destroy();
        return;
      }
      if (upRes) {
        upRes.unpipe();
        upRes.resume();
      } else upReq.once('response', (r) => r.resume());
    });
    (req as NodeJS.ReadableStream).pipe(upReq);
  }

  #hsts(): Record<string, string> {
    return this.config.hstsMaxAge > 0 ? { 'strict-transport-security': `max-age=${this.config.hstsMaxAge}; includeSubDomains` } : {};
  }
}
