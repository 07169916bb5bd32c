// One edge exchange from its start to its record (telemetry/exchange-recorder.ts, shared with the sidecars): the
// request ID and span begun when the request arrives, what routing and policy said, then the outcome.
import type { ListenerDeps } from '../listeners/listener-deps.js';
import type { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import type { IncomingTrace, RequestSpan } from '../telemetry/tracing.js';
import type { EdgeClient } from './client-identity.js';
import type { Admitted, Refused } from './edge-gate.js';
import { normalizeHost } from './route-table.js';

export interface EdgeExchange {
  readonly requestId: string;
  readonly startMs: number;
  readonly protocol: 'http' | 'http2' | 'grpc';
  readonly client: EdgeClient | null | 'invalid';
  readonly method: string;
  readonly path: string;
  readonly span: RequestSpan | undefined;
  readonly resumed: boolean;
  upstream?: string;
  decision?: string;
  policy?: string | null;
}

export interface EdgeOutcome {
  readonly status: number;
  /** gRPC exchanges: the grpc-status ('none' when the upstream sent none). */
  readonly grpcStatus?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
  /** Why it ended early (request_timeout, total_timeout, stream_idle_timeout, downstream_closed, upstream_closed). */
  readonly responseFlags?: string;
}

/**
 * Starts an exchange: request ID, span (continuing the client's trace context) and the clock. `host` as sent;
 * `trace` read only when tracing is on (undefined otherwise: nothing read per request for it).
 */
export function beginExchange(d: ListenerDeps, base: Omit<EdgeExchange, 'requestId' | 'startMs' | 'span'>, host: string | undefined, trace: IncomingTrace | undefined): EdgeExchange {
  const requestId = d.requestId();
  const span = trace && d.tracer?.start(base.method, 'edge', trace, { 'tessera.request_id': requestId, 'http.host': normalizeHost(host) });
  // Every field set here, the later ones undefined: one object shape per request, no spread.
  return { protocol: base.protocol, client: base.client, method: base.method, path: base.path, resumed: base.resumed, requestId, startMs: d.nowMs(), span, upstream: undefined, decision: undefined, policy: undefined };
}

/** Notes the route and the policy decision the gate gave; the upstream only when the request goes to it. */
export function noteAdmission(x: EdgeExchange, a: Admitted | Refused): void {
  if (a.ok) x.upstream = a.upstream.label;
  if (a.decision) {
    x.decision = a.decision;
    x.policy = a.policy;
  }
}

export function recordExchange(recorder: ExchangeRecorder, listener: string, x: EdgeExchange, o: EdgeOutcome, endMs: number): void {
  const client = x.client === 'invalid' ? null : x.client;
  const id = client?.spiffeId ? client.spiffeId.toString() : undefined;
  // One literal, no spreads (this runs per request): a field left undefined is one the record does not have.
  recorder.record({
    direction: 'edge',
    protocol: x.protocol,
    listener,
    requestId: x.requestId,
    peer: client ? (id ?? client.subject) : null,
    peerLabel: id ?? '',
    status: o.status,
    grpcStatus: o.grpcStatus,
    method: x.method,
    path: x.path,
    decision: x.decision || undefined,
    policy: x.decision ? (x.policy ?? null) : undefined,
    bytesIn: o.bytesIn,
    bytesOut: o.bytesOut,
    durationMs: endMs - x.startMs,
    endMs,
    upstream: x.upstream || undefined,
    resumed: x.resumed,
    error: o.error || undefined,
    responseFlags: o.responseFlags || undefined,
    span: x.span,
  });
}
