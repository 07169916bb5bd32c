// The edge's HTTP/2 clients: per stream the gate decides (client certificate, target, route, policy), then the
// stream goes to an `http2`/`grpc` route's multiplexed upstream session (h2/h2-forward.ts, as the sidecars) or is
// re-made as HTTP/1.1 for an `http` route. Timeouts (StreamSettings): limits.requestTimeout until the response
// head (not for gRPC, whose deadline is the client's), limits.streamIdleTimeout with no bytes either way, and the
// route's `timeout` in total when set; a stream that makes progress is never cut.

import type * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { refusalGrpcStatus } from '../../../common/refusal-reasons.js';
import { forwardStream, refuseAmbiguous, requestHeaders, respondLocal, streamSettings } from '../h2/h2-forward.js';
import { isGrpcContentType, requestAuthority } from '../h2/h2-heads.js';
import { APP_RESPONSE_DROP, EDGE_CLIENT_DROP } from '../listeners/app-owned-fields.js';
import type { DrainCuts } from '../listeners/drain-cut.js';
import { refusedPastGoaway } from '../listeners/h2-server-limits.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';
import type { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import { traceFields } from '../telemetry/trace-headers.js';
import { beginExchange, type EdgeOutcome, noteAdmission, recordExchange } from './edge-exchange.js';
import type { EdgeGate } from './edge-gate.js';
import { forwardStreamToHttp1 } from './edge-h2-to-h1.js';


export interface EdgeH2Deps {
  readonly d: ListenerDeps;
  readonly gate: EdgeGate;
  readonly recorder: ExchangeRecorder;
  readonly listener: string;
  /** The listener's connections cut at the drain deadline. */
  readonly drainCuts: DrainCuts;
}

export function onEdgeStream(o: EdgeH2Deps, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const { d, gate } = o;
  // A stream reset and destroyed before node:http2 announced it has no session left: nothing to answer. (Its
  // session's premature-reset budget counted it, h2-reset-budget.ts.)
  const session = stream.session;
  if (!session || refusedPastGoaway(stream)) return;
  const socket = session.socket as TLSSocket;
  const client = gate.client(socket);
  const grpc = isGrpcContentType(headers['content-type']);
  const method = String(headers[':method'] ?? 'GET');
  // Only a CONNECT comes without one (nghttp2 refuses any other request without it), and it is refused below.
  const path = String(headers[':path'] ?? '');
  // Routed by, and told to the upstream (requestHeaders, forwardStreamToHttp1), as the same value.
  const host = requestAuthority(headers);
  const x = beginExchange(d, { protocol: grpc ? 'grpc' : 'http2', client, method, path, resumed: socket.isSessionReused?.() ?? false }, host, d.tracer ? { traceparent: headers.traceparent as string | undefined, tracestate: joined(headers.tracestate) } : undefined);
  const record = (r: EdgeOutcome) => recordExchange(o.recorder, o.listener, x, r, d.nowMs());
  if (gate.responseHeaders) withResponseHeaders(stream, gate.responseHeaders);
  // A lower-case method, a fragment, a malformed authority or a CONNECT is refused before routing, as on the
  // sidecars' streams and as the HTTP/1.1 edge refuses them (400 bad_request, counted).
  if (refuseAmbiguous(stream, headers, method, path, grpc)) {
    d.metrics.rejected('edge', 'bad_request');
    record({ status: grpc ? 200 : 400, ...(grpc ? { grpcStatus: '13' } : {}), bytesIn: 0, bytesOut: 0, error: 'bad_request' }); // 13: INTERNAL, as refuseAmbiguous answers gRPC
    return;
  }
  const a = gate.admit({ client, method, host, path, grpc });
  noteAdmission(x, a);
  if (!a.ok) {
    respondLocal(stream, grpc, a.status, a.code, refusalGrpcStatus(a.code));
    record({ status: grpc ? 200 : a.status, ...(grpc ? { grpcStatus: String(refusalGrpcStatus(a.code)) } : {}), bytesIn: 0, bytesOut: 0, error: a.code });
    return;
  }
  const up = a.upstream;
  const add = gate.upstreamHeaders(socket, host, client === 'invalid' ? null : client, { xff: joined(headers['x-forwarded-for']), forwarded: joined(headers.forwarded), proto: joined(headers['x-forwarded-proto']), clientAddress: () => Object.keys(headers).flatMap((n) => (n.startsWith(':') ? [] : [[n, joined(headers[n]) ?? ''] as const])) });
  if (x.span) Object.assign(add, traceFields(x.span));
  // The route's `timeout` is the total; requestTimeout and streamIdleTimeout as on the sidecars' streams.
  // A plain upstream is an app: its copies of what only a proxy says are dropped (a sidecar's refusals pass).
  // Each deadline cut counted, as the HTTP/1.1 edge and the sidecars' streams count theirs (audit 61j F2: uncounted).
  const timeouts = { ...streamSettings(d, up.route, (reason) => d.metrics.rejected('edge', reason), o.drainCuts), dropResponse: up.route.spiffeId ? undefined : APP_RESPONSE_DROP };
  if (up.h2) {
    const out = requestHeaders(headers, EDGE_CLIENT_DROP, add);
    out[':scheme'] = up.route.spiffeId ? 'https' : 'http';
    out[':path'] = a.target;
    forwardStream(stream, out, up.h2, grpc, timeouts, (r) => record({ status: r.status, ...(grpc ? { grpcStatus: r.grpcStatus ?? 'none' } : {}), bytesIn: r.bytesIn, bytesOut: r.bytesOut, ...(r.error ? { error: r.error } : {}), ...(r.responseFlags ? { responseFlags: r.responseFlags } : {}) }));
    return;
  }
  forwardStreamToHttp1(stream, headers, up, { target: a.target, add, timeouts }, record);
}

/**
 * Adds the edge's response headers (HSTS) to whatever the stream answers: the sidecars' forwarder builds the head
 * itself. Per stream object, so nothing global changes.
 */
function withResponseHeaders(stream: http2.ServerHttp2Stream, extra: Readonly<Record<string, string>>): void {
  const respond = stream.respond.bind(stream);
  stream.respond = (h?: http2.OutgoingHttpHeaders, opts?: http2.ServerStreamResponseOptions) => respond({ ...h, ...extra }, opts);
}

function joined(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
