// The inbound mTLS listener for HTTP/2 and gRPC: the same SVID check and per-request authorization as HTTP/1.1,
// then each stream is forwarded over one multiplexed h2c session to the app. A denied gRPC call gets
// PERMISSION_DENIED (7) with a short code; a denied HTTP/2 request gets 403.
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { normalizeRequestTarget } from '../../../common/policy/normalize-path.js';
import type { InboundConfig } from '../config/proxy-config.js';
import { type ForwardResult, forwardStream, requestHeaders, respondLocal, streamSettings } from '../h2/h2-forward.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { verdictOf } from '../telemetry/exchange-recorder.js';
import { traceFields } from '../telemetry/trace-headers.js';
import type { VerifiedPeer } from '../tls/peer-verify.js';
import { APP_RESPONSE_DROP, CALLER_REQUEST_DROP, CALLER_REQUEST_DROP_TRACED } from './app-owned-fields.js';
import { readH2Stream, sidecarH2Options, trackH2Sessions } from './h2-streams.js';
import { type AdmittedPeer, InboundTls } from './inbound-tls.js';
import type { ListenerDeps } from './listener-deps.js';
import { ServedListener } from './served-listener.js';

const GRPC_PERMISSION_DENIED = 7;

export class InboundH2Listener extends ServedListener<InboundConfig> {
  readonly #tls: InboundTls;
  readonly #upstream: H2Upstream;
  /** The app's address, as the access log names it (`upstream`) for a stream that went to it. */
  readonly #appAddress: string;
  readonly #peers = new WeakMap<http2.ServerHttp2Session, { peer: VerifiedPeer; xfcc: string }>();
  /** The admission of the TLS socket node:http2 is taking over: its session is created right after, synchronously. */
  #handing: AdmittedPeer | null | undefined;

  constructor(config: InboundConfig, deps: ListenerDeps) {
    const inboundTls = new InboundTls(config, deps, ['h2']);
    const server = http2.createSecureServer({ ...inboundTls.serverOptions(), ...sidecarH2Options(deps.limits), allowHTTP1: false });
    super('inbound', config, deps, server);
    this.#tls = inboundTls;
    this.onClose(inboundTls.attach(server, server, this.sessions));
    this.#appAddress = `${config.forwardTo.host}:${config.forwardTo.port}`;
    this.#upstream = new H2Upstream({ authority: `http://${config.forwardTo.host}:${config.forwardTo.port}`, idleMs: deps.limits.upstreamIdleTimeoutMs, maxSessions: deps.limits.upstreamPoolSize, settingsTimeoutMs: deps.limits.headersTimeoutMs, nowMs: deps.nowMs, timers: deps.timers, onConnected: () => deps.metrics.upstreamConnectionOpened('inbound') });
    this.onClose(() => this.#upstream.close());
    // The peer is admitted on the TLS socket before node:http2 takes it and writes its SETTINGS: a refused peer's
    // socket is destroyed before any byte goes out, session tickets included, so a refused handshake leaves nothing
    // to resume (a known leaf sent with an unrelated extra certificate was refused, then resumed with its ticket).
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      this.#handing = this.#tls.admit(socket);
    });
    server.on('secureConnection', () => {
      this.#handing = undefined; // after node:http2's own listener, which made the session
    });
    trackH2Sessions(server, this.sessions, deps, 'inbound', (session) => this.#admit(session), config.name);
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  rotateTicketKeys(): void {
    this.#tls.rotateTicketKeys();
  }

  #admit(session: http2.ServerHttp2Session): boolean {
    const admitted = this.#handing;
    if (!admitted) {
      session.destroy();
      return false;
    }
    this.#peers.set(session, { peer: admitted.peer, xfcc: admitted.xfcc });
    this.sessions.setPeer(session, admitted.peer);
    return true;
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const d = this.d;
    const known = this.#peers.get(stream.session as http2.ServerHttp2Session);
    if (!known) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const head = readH2Stream(stream, headers, this.config.protocol, d, 'inbound');
    if (!head) return;
    const { grpc, method, path, requestId } = head;
    const decision = this.#tls.gate.decide(known.peer, this.port, grpc ? 'grpc' : 'http', method, path);
    const span = d.tracer?.start(method, 'inbound', { traceparent: headers.traceparent as string | undefined, tracestate: headers.tracestate as string | undefined }, { 'tessera.peer': known.peer.idText, 'tessera.request_id': requestId });
    const log = (status: number, grpcStatus: string | undefined, bytesIn: number, bytesOut: number, error?: string, responseFlags?: ForwardResult['responseFlags']) => {
      this.exchanges.record({ direction: 'inbound', protocol: head.protocol, listener: this.config.name, requestId, peer: known.peer.idText, status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), method, path, ...verdictOf(decision), bytesIn, bytesOut, durationMs: d.nowMs() - head.startMs, upstream: decision.allowed ? this.#appAddress : undefined, ...(error ? { error } : {}), ...(responseFlags ? { responseFlags } : {}), span });
    };
    if (!decision.allowed) {
      respondLocal(stream, grpc, 403, 'authz_denied', GRPC_PERMISSION_DENIED);
      log(grpc ? 200 : 403, grpc ? String(GRPC_PERMISSION_DENIED) : undefined, 0, 0, 'authz_denied');
      return;
    }
    const add: Record<string, string> = { 'x-forwarded-client-cert': known.xfcc, ...(span ? traceFields(span) : {}) };
    const out = requestHeaders(headers, span ? CALLER_REQUEST_DROP_TRACED : CALLER_REQUEST_DROP, add);
    out[':scheme'] = 'http';
    out[':path'] = normalizeRequestTarget(path) ?? path; // the path the policy decided on
    forwardStream(stream, out, this.#upstream, grpc, { ...streamSettings(d, this.config, (reason) => d.metrics.rejected('inbound', reason), this.sessions.drainCuts), dropResponse: APP_RESPONSE_DROP }, (r) => log(r.status, grpc ? (r.grpcStatus ?? 'none') : undefined, r.bytesIn, r.bytesOut, r.error, r.responseFlags));
  }
}
