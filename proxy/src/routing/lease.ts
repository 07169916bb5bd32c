// What the data path holds while one attempt of a request uses one endpoint of a balanced service: the endpoint,
// its per-endpoint resource (a connection pool, an HTTP/2 upstream), and the calls that feed the balancer's
// latency estimate, load count and outlier detection. Implemented by EndpointBalancer.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';

/** How an attempt ended, as the balancer's outlier detection and metrics see it. */
export type AttemptOutcome =
  /** An answer came (any status below 500, or a 5xx the caller does not count as the endpoint's fault). */
  | 'success'
  /** The endpoint answered 5xx. */
  | 'status_5xx'
  /** The connection was reset or closed before the answer was complete. */
  | 'reset'
  /** The endpoint answered something that is not a valid HTTP response (502 bad_upstream_response). */
  | 'bad_response'
  /** No response head within the request timeout (504 request_timeout). */
  | 'timeout'
  /** Connect refused, timed out, or the TLS handshake failed. */
  | 'connect_failed'
  /** The endpoint presented another SPIFFE ID than the registry gave (secure naming): ejected at once. */
  | 'identity_mismatch'
  /** The client left, a deadline passed, or the proxy gave up: says nothing about the endpoint. */
  | 'cancelled';

export interface Lease<R> {
  /** "host:port": the endpoint's key in its service, and the access log's `upstream`. */
  readonly address: string;
  readonly endpoint: ServiceEndpoint;
  readonly resource: R;
  /** The time to the response head (or the connect, for TCP), in ms: feeds the peak-EWMA estimate. */
  observe(rttMs: number): void;
  /**
   * The endpoint's proxy refused the attempt's stream before it processed anything (it goes again to the same
   * endpoint): the endpoint costs the failure penalty, as after a failed attempt, but nothing counts toward its
   * ejection (the attempt goes on; its outcome is still to come).
   */
  refused(): void;
  /**
   * The attempt's 5xx was the endpoint's, not the request's: another endpoint then answered the same request. The
   * endpoint costs the failure penalty as after a failed attempt (a 5xx alone does not: audit 57e F0). After end().
   */
  blame(): void;
  /** Ends the attempt exactly once (later calls are ignored): the outstanding count drops, the outcome is counted. */
  end(outcome: AttemptOutcome): void;
}

/** One endpoint as /endpoints shows it. */
export interface EndpointView {
  readonly address: string;
  readonly spiffeId: string;
  readonly protocol: string;
  readonly zone: string;
  readonly weight: number;
  /** ready: may be picked; ejected: an outlier, until its return time; draining: removed, finishing in-flight; not_ready: the registry says so. */
  readonly state: 'ready' | 'ejected' | 'draining' | 'not_ready';
  readonly ewmaMs: number;
  /** What its failed attempts add: its cost counts at least this latency (0: none left). */
  readonly penaltyMs: number;
  readonly outstanding: number;
  readonly requests: number;
  readonly failures: number;
  readonly ejections: number;
  /** While ejected: when it returns (ISO time). */
  readonly returnsAt?: string;
}
