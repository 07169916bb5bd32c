// The outbound listener for HTTP/2 and gRPC: the app speaks h2c (prior knowledge, as gRPC clients do) to a
// loopback port; every stream is multiplexed over one long-lived mTLS HTTP/2 session to the upstream proxy,
// which must present exactly the configured SPIFFE ID.
import * as http2 from 'node:http2';
import type { OutboundConfig } from '../config/proxy-config.js';
import { forwardStream, requestHeaders, streamTimeouts } from '../h2/h2-forward.js';
import { H2Upstream } from '../h2/h2-upstream.js';
import { mtlsH2Opener } from '../upstream/mtls-h2-opener.js';
import { readH2Stream, sidecarH2Options, trackH2Sessions } from './h2-streams.js';
import type { ListenerDeps } from './listener-deps.js';
import { outboundMtls, outboundTarget, staticRoute } from './outbound-mtls.js';
import { ServedListener } from './served-listener.js';

const STRIP_TRACE: ReadonlySet<string> = new Set(['traceparent']);
const NONE: ReadonlySet<string> = new Set();

export class OutboundH2Listener extends ServedListener<OutboundConfig> {
  readonly #upstream: H2Upstream;

  constructor(config: OutboundConfig, deps: ListenerDeps) {
    const server = http2.createServer(sidecarH2Options(deps.limits));
    super('outbound', config, deps, server);
    const target = outboundTarget(config, ['h2']);
    const mtls = outboundMtls(deps);
    this.#upstream = new H2Upstream({
      authority: `https://${staticRoute(config).upstream.host}:${staticRoute(config).upstream.port}`,
      // New streams after an SVID or bundle change go to a session handshaken with it; older sessions drain.
      generation: () => deps.identity.current?.generation ?? 0,
      idleMs: deps.limits.upstreamIdleTimeoutMs,
      nowMs: deps.nowMs,
      open: mtlsH2Opener(target, mtls),
    });
    this.onClose(() => this.#upstream.close());
    trackH2Sessions(server, this.sessions, deps, 'outbound', (session) => {
      this.countConnection(session);
      return true;
    });
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const d = this.d;
    const head = readH2Stream(stream, headers, this.config.protocol, d, 'outbound');
    if (!head) return;
    const { grpc, method, path, requestId } = head;
    const peer = staticRoute(this.config).spiffeId.toString();
    const upstream = `${staticRoute(this.config).upstream.host}:${staticRoute(this.config).upstream.port}`;
    const span = d.tracer?.start(`${method} outbound`, 'outbound', headers.traceparent as string | undefined, { 'tessera.peer': peer, 'tessera.request_id': requestId });
    const out = requestHeaders(headers, span ? STRIP_TRACE : NONE, span ? { traceparent: span.traceparent } : {});
    out[':scheme'] = 'https';
    forwardStream(stream, out, this.#upstream, grpc, streamTimeouts(d.limits, this.config, d.nowMs, (reason) => d.metrics.rejected('outbound', reason)), (r) => {
      this.exchanges.record({ direction: 'outbound', protocol: head.protocol, listener: this.config.name, requestId, peer, status: r.status, ...(grpc ? { grpcStatus: r.grpcStatus ?? 'none' } : {}), method, path, bytesIn: r.bytesIn, bytesOut: r.bytesOut, durationMs: d.nowMs() - head.startMs, upstream, ...(r.error ? { error: r.error } : {}), ...(r.responseFlags ? { responseFlags: r.responseFlags } : {}), span });
    });
  }
}
