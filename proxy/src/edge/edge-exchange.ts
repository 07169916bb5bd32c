// One edge exchange from its start to its record (telemetry/exchange-recorder.ts, shared with the sidecars): the
// request ID and span begun when the request arrives, what routing and policy said, then the outcome.
import type { ListenerDeps } from '../listeners/listener-deps.js';
import type { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import type { RequestSpan } from '../telemetry/tracing.js';
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

/** Starts an exchange: request ID, span (continuing the client's traceparent) and the clock. `host` as sent. */
export function beginExchange(d: ListenerDeps, base: Omit<EdgeExchange, 'requestId' | 'startMs' | 'span'>, host: string | undefined, traceparent: string | undefined): EdgeExchange {
  const requestId = d.requestId();
  const span = d.tracer?.start(`${base.method} edge`, 'edge', traceparent, { 'tessera.request_id': requestId, 'http.host': normalizeHost(host) });
  return { ...base, requestId, startMs: d.nowMs(), span };
}

/** Notes the route and the policy decision the gate gave. */
export function noteAdmission(x: EdgeExchange, a: Admitted | Refused): void {
  if (a.upstream) x.upstream = a.upstream.label;
  if (a.decision) {
    x.decision = a.decision;
    x.policy = a.policy;
  }
}

export function recordExchange(recorder: ExchangeRecorder, listener: string, x: EdgeExchange, o: EdgeOutcome, endMs: number): void {
  const client = x.client === 'invalid' ? null : x.client;
  recorder.record({
    direction: 'edge',
    protocol: x.protocol,
    listener,
    requestId: x.requestId,
    peer: client ? (client.spiffeId?.toString() ?? client.subject) : null,
    peerLabel: client?.spiffeId?.toString() ?? '',
    status: o.status,
    ...(o.grpcStatus !== undefined ? { grpcStatus: o.grpcStatus } : {}),
    method: x.method,
    path: x.path,
    ...(x.decision ? { decision: x.decision, policy: x.policy ?? null } : {}),
    bytesIn: o.bytesIn,
    bytesOut: o.bytesOut,
    durationMs: endMs - x.startMs,
    ...(x.upstream ? { upstream: x.upstream } : {}),
    resumed: x.resumed,
    ...(o.error ? { error: o.error } : {}),
    ...(o.responseFlags ? { responseFlags: o.responseFlags } : {}),
    span: x.span,
  });
}
