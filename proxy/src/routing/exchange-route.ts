// One request's way through a balanced service: the endpoint of the current attempt, and whether and where a
// failed attempt goes again. A failure before any byte reached the endpoint (connect, TLS, secure naming, pool
// closed or full) goes to another endpoint whatever the method; one after (5xx, reset) only when the request may
// be sent twice (idempotent, or a route marked retryable, with its body still held), under the retry budget and
// after a backoff. Every attempt's end is reported to the balancer (latency, load, outlier detection).
import { isTesseraError } from '../../../common/errors.js';
import { stalledByClient } from '../../../common/refusal-reasons.js';
import type { RetrySettings } from '../config/routing-config.js';
import type { AttemptOutcome, Lease } from './lease.js';

/** Why an attempt is retried: tessera_retries_total{reason}; `refused`, sent again to the same endpoint (replayRefused). */
export type RetryReason = 'bad_response' | 'connect_failed' | 'identity_mismatch' | 'pool_closed' | 'queue_full' | 'refused' | 'reset' | 'status_5xx';

/** Failures where nothing reached the endpoint: safe to send elsewhere for any method. */
const BEFORE_ANY_BYTE: ReadonlySet<RetryReason> = new Set(['connect_failed', 'identity_mismatch', 'pool_closed', 'queue_full']);

/** What a route needs from its service: the balancer's pick, the budget, the settings, the clock. */
export interface RouteDeps<R> {
  readonly service: string;
  pick(exclude?: ReadonlySet<string>): Lease<R> | undefined;
  /** The service's retry budget: one deposit per request, one withdrawal per retry after bytes were sent. */
  readonly budget: { deposit(): void; tryWithdraw(): boolean; refund(): void };
  readonly retry: RetrySettings;
  /** limits.requestTimeout: an attempt given less than half of it is not charged its `timeout` (attemptTimeout). */
  readonly headTimeoutMs: number;
  readonly nowMs: () => number;
  readonly random: () => number;
  readonly onRetry: (service: string, reason: RetryReason) => void;
  /** Every attempt's end (per-endpoint metrics) and its latency when it had one. */
  readonly onAttempt: (service: string, address: string, outcome: AttemptOutcome) => void;
  readonly onLatency: (service: string, address: string, seconds: number) => void;
}

/**
 * How an exchange ends its last attempt (ExchangeRoute.end): an AttemptOutcome, or `upstream_stalled`, a stream idle
 * cut while the request body waited for the endpoint (exchangeOutcome), which is its `timeout` in full.
 */
export type ExchangeEnd = AttemptOutcome | 'upstream_stalled';

/** The next attempt: its endpoint, and how long to wait before it starts (0: at once). */
export interface NextAttempt<R> {
  readonly lease: Lease<R>;
  readonly delayMs: number;
}

export class ExchangeRoute<R> {
  readonly #d: RouteDeps<R>;
  #lease: Lease<R>;
  #attemptStartMs: number;
  #retries = 0;
  #attemptEnded = false;
  /** The current attempt reached its endpoint (a request went out, or the tunnel is up). */
  #sent = false;
  /** Endpoints already tried (only allocated on a first retry). */
  #tried: Set<string> | null = null;
  /** The attempt that failed, named by the log until the next one's backoff ends (until then nothing was sent to it). */
  #failed: Lease<R> | null = null;
  /** Attempts of this request that ended with a 5xx and were retried elsewhere: blamed if a later one succeeds. */
  #fiveXx: Lease<R>[] | null = null;
  #backoffEndsMs = 0;

  /** The first attempt, or null when the service has no endpoint to try (503 no_endpoints). */
  static open<R>(deps: RouteDeps<R>): ExchangeRoute<R> | null {
    const lease = deps.pick();
    if (!lease) return null;
    deps.budget.deposit();
    return new ExchangeRoute(deps, lease);
  }

  private constructor(deps: RouteDeps<R>, lease: Lease<R>) {
    this.#d = deps;
    this.#lease = lease;
    this.#attemptStartMs = deps.nowMs();
  }

  get lease(): Lease<R> {
    return this.#lease;
  }

  get resource(): R {
    return this.#lease.resource;
  }

  /**
   * The attempt the access log names (`upstream`, `peer`): the current one, or while a retry's backoff runs, the one
   * that failed. A client that leaves during the backoff left an exchange whose next endpoint was never contacted.
   */
  get logged(): Lease<R> {
    return this.#failed !== null && this.#d.nowMs() < this.#backoffEndsMs ? this.#failed : this.#lease;
  }

  /** The access log's `upstream`: the endpoint of the last attempt begun. */
  get address(): string {
    return this.logged.address;
  }

  get retries(): number {
    return this.#retries;
  }

  /**
   * The request went out on a connection: the attempt's latency counts from here, so a new connection's handshake
   * (paid once, then pooled) does not make its endpoint look slow (Linkerd's balancer measures from dispatch too).
   */
  dispatched(): void {
    this.#sent = true;
    this.#attemptStartMs = this.#d.nowMs();
  }

  /** The response head (or the connection, for TCP) arrived: the attempt's latency feeds the estimate. */
  responded(): void {
    this.#sent = true;
    const ms = this.#d.nowMs() - this.#attemptStartMs;
    this.#lease.observe(ms);
    this.#d.onLatency(this.#d.service, this.#lease.address, ms / 1000);
  }

  /**
   * The current attempt failed with `reason`. `replayable`: the request could be sent again whole (idempotent or
   * retryable, body held); ignored for failures before any byte. Returns the next attempt, or null: the failure
   * stands (its outcome is recorded either way).
   */
  retry(reason: RetryReason, replayable: boolean, deadlineMs = Number.POSITIVE_INFINITY): NextAttempt<R> | null {
    const d = this.#d;
    this.#endAttempt(outcomeOf(reason));
    const beforeAnyByte = BEFORE_ANY_BYTE.has(reason);
    if (this.#retries >= d.retry.maxRetries || (!beforeAnyByte && !replayable)) return null;
    const delayMs = beforeAnyByte ? 0 : this.#backoffMs(this.#retries + 1);
    // The listener's total bounds every attempt: one that could only start at or past it is neither made nor counted.
    if (d.nowMs() + delayMs >= deadlineMs) return null;
    // Connection failures cost the endpoint nothing and the request nothing yet: outside the budget.
    if (!beforeAnyByte && !d.budget.tryWithdraw()) return null;
    this.#tried ??= new Set();
    this.#tried.add(this.#lease.address);
    const next = d.pick(this.#tried);
    if (!next) {
      // Every endpoint was tried: no retry happened, so it must not spend the budget other requests may need.
      if (!beforeAnyByte) d.budget.refund();
      return null;
    }
    this.#retries++;
    d.onRetry(d.service, reason);
    if (reason === 'status_5xx') {
      this.#fiveXx ??= [];
      this.#fiveXx.push(this.#lease);
    }
    this.#failed = this.#lease;
    this.#backoffEndsMs = d.nowMs() + delayMs;
    this.#lease = next;
    this.#attemptEnded = false;
    this.#sent = false;
    this.#attemptStartMs = d.nowMs();
    return { lease: next, delayMs };
  }

  /**
   * The attempt's stream was refused by the endpoint's proxy before it processed anything (a multiplexed stream's RST
   * REFUSED): whether the request may go again to the same endpoint, on another session, as a retry under the limit
   * and the budget, before the total. Counted (`refused`); the attempt goes on, its outcome still to come, and the
   * endpoint costs the failure penalty either way.
   */
  replayRefused(deadlineMs: number): boolean {
    const d = this.#d;
    // Sent again or not, the endpoint turned a request away: it must not stay the cheapest.
    this.#lease.refused();
    if (this.#retries >= d.retry.maxRetries || d.nowMs() >= deadlineMs || !d.budget.tryWithdraw()) return false;
    this.#retries++;
    d.onRetry(d.service, 'refused');
    return true;
  }

  /**
   * An HTTP/2 endpoint refused the attempt's stream (REFUSED_STREAM, as the streams above a GOAWAY's last id end) and
   * it goes again to the same endpoint, outside the budget and not charged to it: routine for an app that rotates its
   * connections (routing.md). Only counted (`refused`), as the other paths count their replays.
   */
  refusedAgain(): void {
    this.#d.onRetry(this.#d.service, 'refused');
  }

  /**
   * The exchange is over: the last attempt's outcome (a no-op when a retry already ended it and none followed). A
   * success elsewhere shows the endpoints that answered this request 5xx failed on their own: they are blamed now.
   */
  end(outcome: ExchangeEnd): void {
    this.#endAttempt(outcome);
    if (outcome === 'success' && this.#fiveXx) for (const l of this.#fiveXx) l.blame();
    this.#fiveXx = null;
  }

  #endAttempt(given: ExchangeEnd): void {
    if (this.#attemptEnded) return;
    // An attempt that never reached its endpoint (ended during a retry's backoff or while its connection was being
    // had) can only have failed to connect; anything else that ended it says nothing about the endpoint.
    let outcome: AttemptOutcome = given === 'upstream_stalled' ? 'timeout' : given;
    if (!this.#sent && given !== 'connect_failed' && given !== 'identity_mismatch') outcome = 'cancelled';
    // The head deadline is shared by the attempts (attemptTimeout); the stream idle one is each stall's own.
    else if (given === 'timeout') outcome = attemptTimeout(this.#d.nowMs() - this.#attemptStartMs, this.#d.headTimeoutMs);
    this.#attemptEnded = true;
    this.#lease.end(outcome);
    this.#d.onAttempt(this.#d.service, this.#lease.address, outcome);
  }

  /** The backoff before retry number `n` (1 for the first): exponential, jittered between half and all of it. */
  #backoffMs(n: number): number {
    const r = this.#d.retry;
    const ceiling = Math.min(r.backoffMaxMs, r.backoffBaseMs * 2 ** (n - 1));
    return Math.round(ceiling * (0.5 + this.#d.random() / 2));
  }
}

function outcomeOf(reason: RetryReason): AttemptOutcome {
  switch (reason) {
    case 'status_5xx':
      return 'status_5xx';
    case 'reset':
      return 'reset';
    case 'bad_response':
      return 'bad_response';
    case 'identity_mismatch':
      return 'identity_mismatch';
    case 'queue_full':
    case 'refused':
      // Busy (or draining) is not broken: the endpoint is healthy, only saturated here.
      return 'cancelled';
    default:
      return 'connect_failed';
  }
}

/**
 * What a `timeout` (no response head within limits.requestTimeout) says about the attempt it ended, `attemptMs` after
 * its request went out. The head deadline is the exchange's, armed once: an attempt that a retry started with less
 * than half of it left was cut by time its predecessors used, so it is `cancelled`, not charged (Envoy keeps the
 * two apart with a per-try timeout; here the try's share of the deadline decides).
 */
export function attemptTimeout(attemptMs: number, headTimeoutMs: number): 'timeout' | 'cancelled' {
  return attemptMs * 2 < headTimeoutMs ? 'cancelled' : 'timeout';
}

/**
 * How a finished exchange ends its last attempt: a 5xx, a malformed answer (`bad_response`, as when it is retried)
 * or a response head that never came (`timeout`) is the endpoint's failure, as is a stream idle cut while request
 * bytes waited for it (`heldUpstream`: it stopped reading the body, answered 504; `upstream_stalled`, charged as a
 * `timeout` whatever the attempt's share of the head deadline); the client leaving or
 * stalling its own request body (stalledByClient, answered 408), a total timeout or this proxy's drain deadline says
 * nothing about it.
 * A gRPC call (`grpcStatus` given) that ended HTTP 200 with UNAVAILABLE is a 5xx, as Envoy maps it to 503; any other
 * grpc-status is what the call did, not the endpoint's health. `requestComplete`: the client's request body had ended.
 */
export function exchangeOutcome(status: number, error: string | undefined, flag: string | undefined, grpcStatus: string | undefined, requestComplete: boolean, heldUpstream: boolean): ExchangeEnd {
  if (flag === 'downstream_closed' || flag === 'total_timeout' || flag === 'drain_timeout' || error === 'downstream_reset') return 'cancelled';
  if (stalledByClient(flag, requestComplete, heldUpstream)) return 'cancelled';
  if (flag === 'stream_idle_timeout' && !requestComplete) return 'upstream_stalled';
  if (error === 'upstream_reset' || flag === 'upstream_closed') return 'reset';
  if (error === 'upstream_unavailable') return 'connect_failed';
  if (error === 'bad_upstream_response') return 'bad_response';
  if (flag === 'request_timeout') return 'timeout';
  if (status >= 500 || (status === 200 && grpcStatus === GRPC_UNAVAILABLE)) return 'status_5xx';
  return 'success';
}

/**
 * How a TCP tunnel (an outbound TCP connection, a CONNECT tunnel) ends its attempt, by relay()'s error: only the
 * endpoint's own reset is its failure; an idle tunnel the proxy closed (idle_timeout) or the client's reset
 * (downstream_reset) says nothing about it (`cancelled`, which neither counts toward ejection nor resets the count);
 * a tunnel both sides closed is a `success`; one whose upstream refused this proxy's certificate `connect_failed`.
 */
export function tunnelOutcome(error: string | undefined): AttemptOutcome {
  if (error === undefined) return 'success';
  // The upstream refused this proxy after the tunnel began (refusalGuard): a failed connection, as over HTTP.
  if (error === 'upstream_unavailable') return 'connect_failed';
  return error === 'upstream_reset' ? 'reset' : 'cancelled';
}

/** grpc-status UNAVAILABLE, as the trailers carry it. */
const GRPC_UNAVAILABLE = '14';

/** What a failed connection attempt says about the endpoint. */
export function connectFailureReason(err: unknown): RetryReason {
  if (isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL')) return 'queue_full';
  if (isTesseraError(err, 'TESSERA_ERR_UPSTREAM_POOL_CLOSED')) return 'pool_closed';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('TESSERA_ERR_SVID_') || code.startsWith('TESSERA_ERR_REVOCATION_'))) return 'identity_mismatch';
  return 'connect_failed';
}

/** Methods that may be sent twice (RFC 9110 section 9.2.2 idempotent, minus the ones with side effects by habit). */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Whether a request of `method` may be retried after it reached an endpoint (`retryable`: the route says any may). */
export function retryableMethod(method: string, retryable: boolean): boolean {
  return retryable || IDEMPOTENT.has(method);
}
