// The edge listener: TLS for outside clients (HTTP/1.1 and HTTP/2 by ALPN, SNI certificates, optional client
// certificates), routing by host and path to mesh upstreams re-originated over mTLS with secure naming, forwarding
// headers from the real connection, optional HSTS, the same metrics, access log, tracing and drain as sidecars.

import { X509Certificate } from 'node:crypto';
import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, request, type ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { peerChainDer } from '../../../common/pki/peer-chain.js';
import { normalizeRequestTarget } from '../../../common/policy/normalize-path.js';
import { authorize } from '../authz/authorize.js';
import type { EdgeConfig, EdgeRouteConfig } from '../config/edge-config.js';
import { headOfParsedResponse, responseFraming } from '../http1/http1-head.js';
import { h2ServerOptions, watchH2Session } from '../listeners/h2-server-limits.js';
import { IdleSignal } from '../listeners/idle-signal.js';
import { listenOn } from '../listeners/listen.js';
import type { Listener } from '../listeners/listener.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import { SessionSet } from '../listeners/session-set.js';
import { AcceptTimes } from '../telemetry/accept-times.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import { deniedBy } from '../tls/deny-list.js';
import { IntermediateMemory, PeerVerifier } from '../tls/peer-verify.js';
import { MtlsAgent } from '../upstream/mtls-agent.js';
import { type EdgeClient, type EdgeClientFailure, verifyEdgeClient, xfccFor } from './client-identity.js';
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
  /** host:port as a Host header value (IPv6 in brackets). */
  readonly authority: string;
}

export class EdgeListener implements Listener {
  readonly kind = 'edge' as const;
  readonly config: EdgeConfig;
  readonly #d: ListenerDeps;
  readonly #server: http2.Http2SecureServer;
  readonly #certs: EdgeCertificates;
  readonly #routes: EdgeRoute<Upstream>[];
  readonly #trusted: (ip: string) => boolean;
  readonly #sockets = new Map<TLSSocket, number>();
  /** Verified clients by leaf fingerprint, for the client-CA and identity generations in #clientsKey. */
  readonly #clients = new Map<string, EdgeClient>();
  /** HTTP/2 sessions and their header/idle deadlines (HTTP/1.1 connections are Node's http server's). */
  readonly #h2Sessions: SessionSet;
  #clientsKey = '';
  readonly #clientIntermediates = new IntermediateMemory();
  #draining = false;
  readonly #idle = new IdleSignal();
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
    const mtls = { identity: deps.identity, contexts: deps.clientContexts, verifier: new PeerVerifier(), denyList: deps.denyList, metrics: deps.metrics, nowMs: deps.nowMs, handshakeTimeoutMs: deps.limits.handshakeTimeoutMs, direction: 'edge' };
    const agentOpts = { maxSockets: deps.limits.upstreamPoolSize, timeout: deps.limits.upstreamIdleTimeoutMs };
    this.#routes = config.routes.map((route) => {
      const label = `${route.upstream.host}:${route.upstream.port}`;
      const agent = route.spiffeId ? new MtlsAgent({ host: route.upstream.host, port: route.upstream.port, expectedId: route.spiffeId, alpn: ['http/1.1'] }, mtls, agentOpts) : new HttpAgent({ keepAlive: true, ...agentOpts });
      if (route.unsafePlaintext) deps.log.warn({ listener: config.name, host: route.host, pathPrefix: route.pathPrefix, upstream: label }, 'edge route to a PLAINTEXT upstream (unsafePlaintext: true)');
      const authority = route.upstream.host.includes(':') ? `[${route.upstream.host}]:${route.upstream.port}` : label;
      return { host: route.host, pathPrefix: route.pathPrefix, upstream: { route, agent, label, authority } };
    });
    this.#server = http2.createSecureServer({
      ...this.#certs.defaultOptions,
      SNICallback: this.#certs.sniCallback,
      allowHTTP1: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      requestCert: config.clientCa !== undefined,
      rejectUnauthorized: config.clientCa !== undefined && config.clientCert === 'required',
      handshakeTimeout: deps.limits.handshakeTimeoutMs,
      ...h2ServerOptions(deps.limits, 32),
      ...http1Timeouts(deps.limits),
    });
    this.#h2Sessions = new SessionSet(deps.nowMs, () => undefined);
    this.#server.on('session', (session) => watchH2Session(this.#h2Sessions, session, deps.limits, deps.nowMs, (code) => deps.metrics.rejected('edge', code)));
    this.#server.maxConnections = deps.limits.maxConnections;
    this.#server.setTimeout(deps.limits.idleTimeoutMs);
    const accepts = new AcceptTimes(this.#server, deps.nowMs);
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      const handshakeSeconds = accepts.secondsSince(socket, deps.nowMs());
      const verdict = this.#verifyClient(socket);
      if (verdict && isFailure(verdict) && config.clientCert === 'required') {
        deps.metrics.handshake('edge', false, verdict.reason, socket.isSessionReused());
        deps.log.info({ listener: config.name, reason: verdict.reason, detail: verdict.message }, 'edge client refused');
        socket.destroy();
        return;
      }
      if (verdict && !isFailure(verdict) && this.#banned(verdict)) {
        deps.metrics.handshake('edge', false, 'revoked', socket.isSessionReused());
        deps.log.warn({ listener: config.name, peer: verdict.spiffeId?.toString() ?? verdict.subject, serial: verdict.serial }, 'edge client refused: revoked');
        socket.destroy();
        return;
      }
      deps.metrics.handshake('edge', true, 'none', socket.isSessionReused(), handshakeSeconds);
      deps.metrics.connectionOpened('edge');
      this.#sockets.set(socket, 0);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        this.#idle.changed(this.#sockets.size);
        deps.metrics.connectionClosed('edge');
      });
    });
    this.#server.on('tlsClientError', (err, socket) => {
      // With a listener attached Node no longer destroys the socket: a handshake timeout would leave it open.
      socket.destroy();
      deps.metrics.handshake('edge', false, classifyTlsError(err), false);
    });
    this.#server.on('request', (req: Req, res: Res) => this.#onRequest(req, res));
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, this.config.listen, () => this.#d.metrics.rejected('edge', 'too_many_connections'));
    this.#h2Sessions.start();
    this.#certs.start((opts) => this.#server.setSecureContext(opts));
    return { host: this.config.listen.host, port: this.#port };
  }

  get port(): number {
    return this.#port;
  }

  idle(): Promise<void> {
    return this.#idle.wait(this.#sockets.size);
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
    this.#h2Sessions.destroyAll();
    for (const socket of this.#sockets.keys()) socket.destroy();
    for (const r of this.#routes) r.upstream.agent.destroy();
  }

  /** The client's identity from its certificate, null without one; 'invalid' when it does not verify. */
  #client(req: Req): EdgeClient | null | 'invalid' {
    if (!this.config.clientCa) return null;
    const socket = req.socket as TLSSocket;
    // OpenSSL refused the chain already (clientCert: optional): failures are not cached, so building it again on
    // every request of the connection would be wasted work.
    if (!socket.authorized) return socket.getPeerCertificate()?.fingerprint256 ? 'invalid' : null;
    const v = this.#verifyClient(socket);
    if (v === null) return null;
    // Checked per request too: a ban that lands while the connection is open refuses its next request.
    return isFailure(v) || this.#banned(v) ? 'invalid' : v;
  }

  /** The operator banned this client's SPIFFE ID or leaf serial (`tessera revoke`), whichever CA issued it. */
  #banned(c: EdgeClient): boolean {
    return deniedBy(this.#d.denyList.current, { idText: c.spiffeId?.toString() ?? '', serial: c.serial }) !== null;
  }

  /** The one client verifier (client-identity.ts): same leaf rules as SVID peers, identity confined to its CA. */
  #verifyClient(socket: TLSSocket): EdgeClient | EdgeClientFailure | null {
    if (!this.config.clientCa) return null;
    const fp = socket.getPeerCertificate()?.fingerprint256;
    if (!fp) return null;
    const d = this.#d;
    const snapshot = d.identity.current!;
    const key = `${this.#certs.generation}/${snapshot.generation}`;
    if (key !== this.#clientsKey) {
      this.#clients.clear();
      this.#clientsKey = key;
    }
    const now = d.nowMs();
    const hit = this.#clients.get(fp);
    if (hit && hit.notAfterMs > now) return hit;
    let chain: X509Certificate[];
    try {
      chain = peerChainDer(socket.getPeerCertificate(true)).map((der) => new X509Certificate(der));
    } catch {
      return { ok: false, reason: 'bad_svid', code: 'TESSERA_ERR_SVID_MALFORMED', message: 'a client certificate could not be parsed' };
    }
    const trust = { authorities: this.#certs.clientAuthorities, clientTrustDomain: this.config.clientTrustDomain ?? null, mesh: snapshot.bundles, ownTrustDomain: snapshot.id.trustDomain };
    this.#clientIntermediates.complete(chain);
    const r = verifyEdgeClient(chain, trust, now);
    if (!r.ok) return r;
    this.#clientIntermediates.remember(r.path.slice(1, -1));
    if (this.#clients.size >= 1024) this.#clients.clear();
    this.#clients.set(fp, r.client);
    return r.client;
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
      d.metrics.request('edge', protocol, status, ms / 1000, this.config.name, client && client !== 'invalid' ? (client.spiffeId?.toString() ?? '') : '');
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
    // Routing, policy and the upstream all see one target: the normalized path (and the raw query). A fragment or a
    // path that cannot be normalized safely is refused, as on the sidecars (an app cleaning "/public/x#/../admin"
    // would serve "/admin").
    const target = normalizeRequestTarget(path);
    if (target === null) {
      local(400, 'bad_request');
      return;
    }
    const route = selectRoute(this.#routes, host, target);
    if (!route) {
      local(404, 'no_route');
      return;
    }
    upstreamLabel = route.upstream.label;

    if (this.config.authorize) {
      const decision = authorize(d, { source: client?.spiffeId ?? null, port: this.#port, method, path: target, protocol: 'http' });
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
    // HTTP/1.0 may come without Host; the upstream request is HTTP/1.1, where an empty Host is refused by strict apps.
    headers.host = rawHost || route.upstream.authority;
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
    const upReq = request({ agent: up.agent, host: up.route.upstream.host, port: up.route.upstream.port, method, path: target, headers, setHost: false });
    const timer = setTimeout(() => upReq.destroy(Object.assign(new Error('request timeout'), { code: 'request_timeout' })), d.limits.requestTimeoutMs);
    let bytesOut = 0;
    let upRes: IncomingMessage | undefined;
    upReq.on('response', (response) => {
      upRes = response;
      // The sidecars' framing rules (RFC 9112 section 6.3): a response llhttp let through with a repeated
      // Content-Length, or Transfer-Encoding not ending in chunked, is refused rather than re-framed.
      if (responseFraming(headOfParsedResponse(response.statusCode ?? 0, response.httpVersionMinor, response.rawHeaders), method) === 'bad_request') {
        clearTimeout(timer);
        response.destroy();
        upReq.destroy();
        local(502, 'bad_upstream_response');
        return;
      }
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
      if (done) return;
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

function isFailure(v: EdgeClient | EdgeClientFailure): v is EdgeClientFailure {
  return 'ok' in v;
}

/**
 * The HTTP/1.1 side of the edge is Node's http server: its headersTimeout also covers a connection that sends
 * nothing, and is checked every connectionsCheckingInterval (default 30 s, far too coarse for a slowloris).
 */
function http1Timeouts(limits: ListenerDeps['limits']): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  return { headersTimeout: limits.headersTimeoutMs, requestTimeout, connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs) };
}
