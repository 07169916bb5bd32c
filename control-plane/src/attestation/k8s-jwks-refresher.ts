// Keeps the Kubernetes attestor's JWKS file current from the API server (OIDC discovery, then /openid/v1/jwks),
// written atomically; a failed fetch keeps the last good file. Fetched at start, then every intervalMs; a failed
// fetch is tried again on the API server's backoff (API_SERVER_RETRY, as discovery's watches) until one succeeds,
// so a replica that started while the API server was away attests once it is back, not a jwksRefresh later
// (audit 38b F1). A token whose key the file lacks asks for a fetch now (refetch, audit 38b F2): callers share the
// fetch in flight, and one started less than minRefetchMs after the last is not made (that one's outcome stands),
// so tokens with made-up key ids cannot become a flood of requests to the API server.
import { type BackoffOptions, backoffDelay } from '../../../common/backoff.js';
import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import type { Timers } from '../../../shared-io/timers.js';
import { writeFileAtomicSync } from '../ca/atomic-file.js';
import { API_SERVER_RETRY } from './k8s-api-fetch.js';
import { fetchK8sJwks, jwksDocument } from './k8s-oidc-discovery.js';

/** Why a fetch was made: the first one, the regular one, a retry after a failure, or a token's unknown key. */
export type JwksFetchCause = 'start' | 'interval' | 'retry' | 'unknown-key';

export interface JwksFetchResult {
  readonly ok: boolean;
  readonly cause: JwksFetchCause;
  /** The number of keys fetched, or the failure. */
  readonly detail: string;
  /** After a failure: when the next attempt is made (undefined once stopped). */
  readonly retryInMs?: number;
}

export interface JwksRefresherOptions {
  readonly apiServer: string;
  readonly fetch: HttpFetch;
  readonly bearerToken: () => string | undefined;
  readonly issuer: string;
  readonly file: string;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly timers: Timers;
  /** The wait after a failed fetch (default API_SERVER_RETRY). */
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
  /** The least time from the start of one fetch to a refetch a token asks for (default 5 s). */
  readonly minRefetchMs?: number;
  readonly onResult: (result: JwksFetchResult) => void;
}

/**
 * At most one refetch per 5 s: a rotated key is picked up by a sidecar's next attempt, and tokens with made-up key
 * ids cost the API server no more than one discovery and one JWKS GET per 5 s per replica.
 */
export const DEFAULT_MIN_REFETCH_MS = 5_000;

type Outcome = { readonly ok: true; readonly keys: number } | { readonly ok: false; readonly error: unknown };

export class JwksRefresher {
  readonly #o: JwksRefresherOptions;
  #timer: unknown;
  #inFlight: Promise<Outcome> | undefined;
  #last: { readonly startedMs: number; readonly outcome: Outcome } | undefined;
  #failures = 0;
  #running = false;

  constructor(opts: JwksRefresherOptions) {
    this.#o = opts;
  }

  /** The first fetch, then the schedule; resolves to whether that fetch succeeded (the caller only logs it). */
  async start(): Promise<boolean> {
    this.#running = true;
    return (await this.#fetch('start')).ok;
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A token names a key the file lacks: fetch now, unless a fetch is in flight (its outcome is awaited) or one
   * started less than minRefetchMs ago (its outcome stands). Rejects with the failure when the keys could not be
   * fetched, so the caller can tell "not published" from "not known right now".
   */
  async refetch(): Promise<void> {
    const last = this.#last;
    // A wall clock set back reads as a fetch in the future: not recent, so it cannot hold refetches off for long.
    const age = last ? this.#o.clock.nowMs() - last.startedMs : Number.POSITIVE_INFINITY;
    let outcome: Outcome;
    if (this.#inFlight) outcome = await this.#inFlight;
    else if (last && age >= 0 && age < (this.#o.minRefetchMs ?? DEFAULT_MIN_REFETCH_MS)) outcome = last.outcome;
    else outcome = await this.#fetch('unknown-key');
    if (!outcome.ok) throw outcome.error;
  }

  /** One fetch at a time: a cause arriving while one is in flight shares it. Each outcome sets the next one. */
  #fetch(cause: JwksFetchCause): Promise<Outcome> {
    if (this.#inFlight) return this.#inFlight;
    const startedMs = this.#o.clock.nowMs();
    const flight = this.#fetchOnce().then((outcome) => {
      this.#inFlight = undefined;
      this.#last = { startedMs, outcome };
      const next = this.#schedule(outcome);
      try {
        this.#o.onResult(outcome.ok ? { ok: true, cause, detail: `${outcome.keys} key(s)` } : { ok: false, cause, detail: describeError(outcome.error), ...(next !== undefined ? { retryInMs: next } : {}) });
      } catch {
        // a failing report must not fail the fetch nor escape from a timer
      }
      return outcome;
    });
    this.#inFlight = flight;
    return flight;
  }

  async #fetchOnce(): Promise<Outcome> {
    const o = this.#o;
    try {
      const token = o.bearerToken();
      const jwks = await fetchK8sJwks({ apiServer: o.apiServer, fetch: o.fetch, clock: o.clock, expectedIssuer: o.issuer, ...(token ? { bearerToken: token } : {}) });
      writeFileAtomicSync(o.file, jwksDocument(jwks), 0o644);
      return { ok: true, keys: jwks.keys.length };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** The next fetch: jwksRefresh after a success, the backoff after a failure; returns its delay (none once stopped). */
  #schedule(outcome: Outcome): number | undefined {
    if (!this.#running) return undefined;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    const delay = outcome.ok ? this.#o.intervalMs : backoffDelay(this.#failures++, this.#o.backoff ?? API_SERVER_RETRY, this.#o.random);
    if (outcome.ok) this.#failures = 0;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#fetch(outcome.ok ? 'interval' : 'retry');
    }, delay);
    return delay;
  }
}
