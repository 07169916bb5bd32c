// The one place an ended exchange (an HTTP request, a gRPC call, a TCP connection) is recorded: its request
// metrics, the end of its span and its access-log line, from one typed record, so every listener kind reports the
// same fields the same way (docs/metrics.md, "Access log").
import type { Decision } from '../../../common/policy/policy-types.js';
import type { AccessEntry, AccessLog } from './access-log.js';
import type { ProxyMetrics } from './metrics.js';
import type { RequestSpan } from './tracing.js';

export type ExchangeDirection = 'inbound' | 'outbound' | 'edge';
export type ExchangeProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface Exchange {
  readonly direction: ExchangeDirection;
  readonly protocol: ExchangeProtocol;
  /** The listener's configured name (the metrics `listener` label). */
  readonly listener: string;
  readonly requestId: string;
  /** The caller (inbound, edge) or the upstream's expected ID (outbound) as logged; null: nobody known. */
  readonly peer: string | null;
  /** The metrics `peer` label when it differs from `peer` (the edge labels SPIFFE IDs only); default `peer ?? ''`. */
  readonly peerLabel?: string;
  /** HTTP status; for TCP the outcome (200, 403, 502) that labels the metrics, not logged. */
  readonly status: number;
  /** gRPC status of a gRPC exchange: the metrics code and span attribute (`none` when the upstream sent none). */
  readonly grpcStatus?: string;
  readonly method?: string;
  readonly path?: string;
  /** The authorization verdict (inbound and edge): logged with its policy and set on the span. */
  readonly decision?: string;
  readonly policy?: string | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  /** When it ended (the clock's epoch ms), if the caller has read it: the access log's time without another read. */
  readonly endMs?: number;
  readonly upstream?: string;
  /** TLS resumption of the client's (inbound, edge) or the upstream's (outbound) session. */
  readonly resumed?: boolean;
  /** Only for unauthenticated (plaintext) callers, whom no SPIFFE ID names. */
  readonly clientIp?: string;
  readonly error?: string;
  /** Why it ended early (stream_idle_timeout, downstream_closed, ...): the access log's responseFlags. */
  readonly responseFlags?: string;
  readonly span?: RequestSpan | undefined;
}

/** The access-log `decision` and `policy` of an authorization decision. */
export function verdictOf(d: Pick<Decision, 'allowed' | 'policy'>): { decision: 'allow' | 'deny'; policy: string | null } {
  return { decision: d.allowed ? 'allow' : 'deny', policy: d.policy };
}

/** The W3C trace id (32 hex digits) inside a traceparent `00-<trace id>-<span id>-<flags>`. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** The access-log line of an exchange: fields with no value are left out, as before (TCP lines have no status). */
export function accessEntryOf(e: Exchange): AccessEntry {
  const entry: AccessEntry = { requestId: e.requestId, direction: e.direction, protocol: e.protocol, peer: e.peer, bytesIn: e.bytesIn, bytesOut: e.bytesOut, durationMs: e.durationMs };
  if (e.endMs !== undefined) entry.time = e.endMs;
  if (e.clientIp !== undefined) entry.clientIp = e.clientIp;
  if (e.method !== undefined) entry.method = e.method;
  if (e.path !== undefined) entry.path = e.path;
  if (e.protocol !== 'tcp') entry.status = e.status;
  // The value the metrics' `code` label and the span are made from: the three never disagree. Only gRPC's codes,
  // as the span's rule: 'none' (no status came) and a non-code an app sent (the label's 'invalid') leave it out.
  if (e.grpcStatus !== undefined) {
    const code = grpcCodeNumber(e.grpcStatus);
    if (code !== undefined) entry.grpcStatus = code;
  }
  if (e.decision !== undefined) {
    entry.decision = e.decision;
    entry.policy = e.policy ?? null;
  }
  if (e.upstream !== undefined) entry.upstream = e.upstream;
  if (e.resumed !== undefined) entry.resumed = e.resumed;
  if (e.error) entry.error = e.error;
  if (e.responseFlags) entry.responseFlags = e.responseFlags;
  if (e.span) entry.traceId = traceIdOf(e.span.traceparent);
  return entry;
}

/**
 * The `code` label of a gRPC exchange: its grpc-status when it is one of gRPC's 17 codes, 'none' without one, else
 * 'invalid'. The status comes from the app or a peer: as written it would let them mint label values at will, and
 * once the series cap is full real traffic would count only under "other".
 */
export function grpcCodeLabel(status: string): string {
  return status === 'none' || /^(?:\d|1[0-6])$/.test(status) ? status : 'invalid';
}

/** The access log's grpcStatus and a span's rpc.grpc.status_code: an integer, for one of gRPC's codes only (the label's rule). */
function grpcCodeNumber(status: string | undefined): number | undefined {
  return status !== undefined && /^(?:\d|1[0-6])$/.test(status) ? Number(status) : undefined;
}

export class ExchangeRecorder {
  readonly #metrics: Pick<ProxyMetrics, 'request'>;
  readonly #accessLog: AccessLog;

  constructor(metrics: Pick<ProxyMetrics, 'request'>, accessLog: AccessLog) {
    this.#metrics = metrics;
    this.#accessLog = accessLog;
  }

  record(e: Exchange): void {
    this.#metrics.request(e.direction, e.protocol, e.grpcStatus === undefined ? e.status : grpcCodeLabel(e.grpcStatus), e.durationMs / 1000, e.listener, e.peerLabel ?? e.peer ?? '');
    e.span?.end({ 'http.status_code': e.status, 'rpc.grpc.status_code': grpcCodeNumber(e.grpcStatus), 'tessera.decision': e.decision, 'tessera.upstream': e.upstream }, e.error);
    // Built only when the log is on: the hot path pays nothing for an 'off' log.
    if (this.#accessLog.enabled) this.#accessLog.write(accessEntryOf(e));
  }
}
