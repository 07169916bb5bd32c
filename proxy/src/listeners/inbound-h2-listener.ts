// The inbound mTLS listener for HTTP/2 and gRPC: the same SVID check and per-request authorization as HTTP/1.1,
// then each stream is forwarded over one multiplexed h2c session to the app. A denied gRPC call gets
// PERMISSION_DENIED (7) with a short code; a denied HTTP/2 request gets 403.
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { InboundConfig } from '../config/proxy-config.js';
import { normalizeRequestTarget } from '../../../common/policy/normalize-path.js';
import { forwardStream, refuseFragment, requestHeaders, respondLocal } from '../h2/h2-forward.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { classifyTlsError } from '../telemetry/handshake-reason.js';
import type { VerifiedPeer } from '../tls/peer-verify.js';
import { serverSecureOptions } from '../tls/tls-contexts.js';
import { h2ServerOptions, watchH2Session } from './h2-server-limits.js';
import { InboundGate } from './inbound-gate.js';
import { listenOn } from './listen.js';
import type { ListenerDeps } from './listener-deps.js';
import { SessionSet } from './session-set.js';
import type { Listener } from './listener.js';

const STRIP: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'traceparent']);
const GRPC_PERMISSION_DENIED = 7;

export class InboundH2Listener implements Listener {
  readonly kind = 'inbound' as const;
  readonly config: InboundConfig;
  readonly #d: ListenerDeps;
  readonly #server: http2.Http2SecureServer;
  readonly #gate: InboundGate;
  readonly #upstream: H2Upstream;
  readonly #peers = new WeakMap<http2.ServerHttp2Session, { peer: VerifiedPeer; xfcc: string }>();
  readonly #sessions: SessionSet;
  readonly #unsubscribe: () => void;
  readonly #unrevoke: () => void;
  #port = 0;

  constructor(config: InboundConfig, deps: ListenerDeps) {
    this.config = config;
    this.#d = deps;
    this.#gate = new InboundGate(deps, config.name);
    const snapshot = deps.identity.current;
    if (!snapshot) throw new Error('inbound listener started before the first SVID');
    this.#server = http2.createSecureServer({
      ...serverSecureOptions(snapshot, deps.ticketKeys.current, config.tlsMinVersion, ['h2']),
      ...h2ServerOptions(deps.limits, 64),
      allowHTTP1: false,
      handshakeTimeout: deps.limits.handshakeTimeoutMs,
    });
    this.#sessions = new SessionSet(deps.nowMs, () => undefined);
    this.#unrevoke = this.#gate.closeRevoked(this.#sessions);
    this.#server.maxConnections = deps.limits.maxConnections;
    this.#gate.timeHandshakes(this.#server);
    this.#server.setTimeout(deps.limits.idleTimeoutMs);
    this.#unsubscribe = deps.identity.subscribe((s) => this.#server.setSecureContext(serverSecureOptions(s, deps.ticketKeys.current, config.tlsMinVersion, ['h2'])));
    this.#upstream = new H2Upstream({ authority: `http://${config.forwardTo.host}:${config.forwardTo.port}` });
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    this.#server.on('tlsClientError', (err, socket) => {
      // With a listener attached Node no longer destroys the socket: a handshake timeout would leave it open.
      socket.destroy();
      deps.metrics.handshake('inbound', false, classifyTlsError(err), false);
    });
  }

  async start(): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#server, this.config.listen, () => this.#d.metrics.rejected('inbound', 'too_many_connections'));
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

  idle(): Promise<void> {
    return this.#sessions.idle();
  }

  get openConnections(): number {
    return this.#sessions.size;
  }

  /** Stop accepting; GOAWAY lets open streams finish while refusing new ones. */
  drain(): void {
    this.#server.close();
    this.#sessions.drain();
  }

  close(): void {
    this.#unsubscribe();
    this.#unrevoke();
    this.#sessions.destroyAll();
    this.#upstream.close();
  }

  #onSession(session: http2.ServerHttp2Session): void {
    const admitted = this.#gate.admit(session.socket as TLSSocket, true);
    if (!admitted) {
      session.destroy();
      return;
    }
    const { peer, snapshot } = admitted;
    this.#peers.set(session, { peer, xfcc: `By=${snapshot.id};URI=${peer.idText};Hash=${peer.leafHash}` });
    watchH2Session(this.#sessions, session, this.#d.limits, this.#d.nowMs, (code) => this.#d.metrics.rejected('inbound', code));
    this.#sessions.setPeer(session, peer);
    session.on('error', () => undefined);
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const d = this.#d;
    const known = this.#peers.get(stream.session as http2.ServerHttp2Session);
    if (!known) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const grpc = this.config.protocol === 'grpc' || String(headers['content-type'] ?? '').startsWith('application/grpc');
    const protocol = grpc ? 'grpc' : 'http2';
    const start = d.nowMs();
    const requestId = d.requestId();
    const method = String(headers[':method'] ?? '');
    const path = String(headers[':path'] ?? '');
    if (refuseFragment(stream, path, grpc)) return void d.metrics.rejected('inbound', 'bad_request');
    const decision = this.#gate.decide(known.peer, this.#port, grpc ? 'grpc' : 'http', method, path);
    const span = d.tracer?.start(`${method} inbound`, 'inbound', headers.traceparent as string | undefined, { 'tessera.peer': known.peer.idText, 'tessera.request_id': requestId });
    const log = (status: number, code: string, bytesIn: number, bytesOut: number, error?: string) => {
      const ms = d.nowMs() - start;
      d.metrics.request('inbound', protocol, code, ms / 1000, this.config.name, known.peer.idText);
      span?.end({ 'http.status_code': status, 'rpc.grpc.status_code': grpc ? code : undefined, 'tessera.decision': decision.allowed ? 'allow' : 'deny' }, error);
      if (d.accessLog.enabled) d.accessLog.write({ requestId, direction: 'inbound', protocol, peer: known.peer.idText, method, path, status, decision: decision.allowed ? 'allow' : 'deny', policy: decision.policy, bytesIn, bytesOut, durationMs: ms, upstream: `${this.config.forwardTo.host}:${this.config.forwardTo.port}`, ...(error ? { error } : {}), ...(span ? { traceId: span.traceparent.slice(3, 35) } : {}) });
    };
    if (!decision.allowed) {
      respondLocal(stream, grpc, 403, 'authz_denied', GRPC_PERMISSION_DENIED);
      log(grpc ? 200 : 403, grpc ? String(GRPC_PERMISSION_DENIED) : '403', 0, 0, 'authz_denied');
      return;
    }
    const add: Record<string, string> = { 'x-forwarded-client-cert': known.xfcc, ...(span ? { traceparent: span.traceparent } : {}) };
    const out = requestHeaders(headers, span ? STRIP : STRIP_XFCC, add);
    out[':scheme'] = 'http';
    out[':path'] = normalizeRequestTarget(path) ?? path; // the path the policy decided on
    forwardStream(stream, out, this.#upstream, grpc, d.limits.requestTimeoutMs, (r) => log(r.status, grpc ? (r.grpcStatus ?? 'none') : String(r.status), r.bytesIn, r.bytesOut, r.error));
  }
}

const STRIP_XFCC: ReadonlySet<string> = new Set(['x-forwarded-client-cert']);
