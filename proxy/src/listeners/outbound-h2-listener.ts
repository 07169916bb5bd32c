// The outbound listener for HTTP/2 and gRPC: the app speaks h2c (prior knowledge, as gRPC clients do) to a
// loopback port; every stream is multiplexed over long-lived mTLS HTTP/2 sessions either to one fixed upstream
// proxy (`upstream:`) or, balanced per stream, to the endpoints of a service (`service:`), each endpoint with its
// own sessions and the SPIFFE ID discovery gave it. A balanced stream that may be sent twice is retried on another
// endpoint after a 5xx head or a reset, under the same rules as HTTP/1.1 (h2-forward.ts, routing/exchange-route.ts).
import * as http2 from 'node:http2';
import { GRPC_STATUS } from '../../../common/grpc-status-codes.js';
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { OutboundConfig } from '../config/proxy-config.js';
import { forwardStream, requestHeaders, respondLocal, streamSettings } from '../h2/h2-forward.js';
import { peerKeepalive } from '../h2/h2-keepalive.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { ExchangeRoute, exchangeOutcome, type RouteDeps, retryableMethod } from '../routing/exchange-route.js';
import type { EndpointView } from '../routing/lease.js';
import type { MtlsDeps, MtlsTarget } from '../upstream/connectors.js';
import { mtlsH2Opener } from '../upstream/mtls-h2-opener.js';
import { ALPN_FOR, endpointTarget } from './endpoint-dial.js';
import { readH2Stream, sidecarH2Options, trackH2Sessions } from './h2-streams.js';
import type { ListenerDeps } from './listener-deps.js';
import { outboundMtls, outboundTarget, staticRoute } from './outbound-mtls.js';
import { ServedListener } from './served-listener.js';
import { serviceBalancers } from './service-routing.js';
import { TRACE_FIELDS, traceFields } from '../telemetry/trace-headers.js';

const STRIP_TRACE: ReadonlySet<string> = new Set(TRACE_FIELDS);
const NONE: ReadonlySet<string> = new Set();
const GRPC_UNAVAILABLE = GRPC_STATUS.UNAVAILABLE;

/** Sessions to one upstream proxy or endpoint: new streams after an SVID or bundle change go to a session handshaken with it. */
function h2Upstream(target: MtlsTarget, mtls: MtlsDeps, deps: ListenerDeps): H2Upstream {
  return new H2Upstream({
    authority: `https://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`,
    generation: () => deps.identity.current?.generation ?? 0,
    idleMs: deps.limits.upstreamIdleTimeoutMs,
    settingsTimeoutMs: deps.limits.headersTimeoutMs,
    maxSessions: deps.limits.upstreamPoolSize,
    nowMs: deps.nowMs,
    timers: deps.timers,
    open: mtlsH2Opener(target, mtls),
    ...peerKeepalive(deps),
  });
}

export class OutboundH2Listener extends ServedListener<OutboundConfig> {
  /** A fixed upstream, with its address and SPIFFE ID for the access log; null when routed to a service. */
  readonly #fixed: { readonly upstream: H2Upstream; readonly address: string; readonly peer: string } | null;
  readonly #service: RouteDeps<H2Upstream> | null;
  readonly #views: () => Record<string, readonly EndpointView[]>;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    const server = http2.createServer(sidecarH2Options(deps.limits));
    // The sessions' keepalive runs with the listener's sweep, as the multiplexed transport's (h2-keepalive.ts).
    let upstreams: () => Iterable<H2Upstream> = () => [];
    super('outbound', config, deps, server, () => {
      let holds = false;
      for (const u of upstreams()) holds = u.sweep() || holds;
      return holds;
    });
    const mtls = outboundMtls(deps);
    if (config.route.kind === 'service') {
      const b = serviceBalancers<H2Upstream>(deps, (ep: ServiceEndpoint) => h2Upstream(endpointTarget(ep, ALPN_FOR.http2), mtls, deps), (u) => u.close());
      upstreams = () => b.resources();
      this.#fixed = null;
      this.#service = b.open(config.route.service);
      this.#views = () => b.views();
      this.onClose(() => b.close());
    } else {
      const r = staticRoute(config);
      const upstream = h2Upstream(outboundTarget(config, ['h2']), mtls, deps);
      upstreams = () => [upstream];
      this.#fixed = { upstream, address: `${r.upstream.host}:${r.upstream.port}`, peer: r.spiffeId.toString() };
      this.#service = null;
      this.#views = () => ({});
      this.onClose(() => upstream.close());
    }
    const admit = (session: http2.ServerHttp2Session) => {
      this.countConnection(session);
      return true;
    };
    trackH2Sessions(server, this.sessions, deps, 'outbound', admit, config.name);
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  endpoints(): Record<string, readonly EndpointView[]> {
    return this.#views();
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const d = this.d;
    const head = readH2Stream(stream, headers, this.config.protocol, d, 'outbound');
    if (!head) return;
    const { grpc, method, path, requestId } = head;
    const fixed = this.#fixed;
    const route = this.#service ? ExchangeRoute.open(this.#service) : null;
    const peer = () => (route ? route.logged.endpoint.spiffeId : (fixed?.peer ?? null));
    const record = (r: { status: number; grpcStatus?: string | undefined; bytesIn: number; bytesOut: number; error?: string | undefined; responseFlags?: string | undefined }, span?: ReturnType<NonNullable<typeof d.tracer>['start']>) => {
      this.exchanges.record({ direction: 'outbound', protocol: head.protocol, listener: this.config.name, requestId, peer: peer(), status: r.status, ...(grpc ? { grpcStatus: r.grpcStatus ?? 'none' } : {}), method, path, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: d.nowMs() - head.startMs, upstream: route?.address ?? fixed?.address, ...(r.error ? { error: r.error } : {}), ...(r.responseFlags ? { responseFlags: r.responseFlags } : {}), span });
    };
    if (this.#service && !route) {
      respondLocal(stream, grpc, 503, 'no_endpoints', GRPC_UNAVAILABLE);
      record({ status: grpc ? 200 : 503, ...(grpc ? { grpcStatus: String(GRPC_UNAVAILABLE) } : {}), bytesIn: 0, bytesOut: 0, error: 'no_endpoints' });
      return;
    }
    const span = d.tracer?.start(method, 'outbound', { traceparent: headers.traceparent as string | undefined, tracestate: headers.tracestate as string | undefined }, { 'tessera.peer': fixed?.peer ?? this.config.name, 'tessera.request_id': requestId });
    const out = requestHeaders(headers, span ? STRIP_TRACE : NONE, span ? traceFields(span) : {});
    out[':scheme'] = 'https';
    const settings = streamSettings(d, this.config, (reason) => d.metrics.rejected('outbound', reason), this.sessions.drainCuts);
    // As over HTTP/1.1, a request that may be sent twice goes to another endpoint after a 5xx or a reset; a gRPC call
    // never (its stream may have been processed, and its client owns the retry policy).
    const replayable = route !== null && !grpc && retryableMethod(method, this.config.retryable);
    forwardStream(stream, out, route ?? fixed!.upstream, grpc, { ...settings, replayable }, (r) => {
      route?.end(exchangeOutcome(r.status, r.error, r.responseFlags, grpc ? r.grpcStatus : undefined, r.requestComplete, r.heldUpstream === true));
      record(r, span);
    });
  }
}
