// Requests the webhook refuses before any admission (HTTP 400/408/413/429/431/503, failed TLS handshakes,
// connections over the cap) are logged, so misuse of the webhook and attacks on it leave a trace (audit 4, C2), but
// at a bounded rate: the first few of each minute one line each, the rest as one summary line with counts.
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';

export interface Refusal {
  /** HTTP status answered, or 0 when the connection was closed without an answer (TLS failure, connection cap). */
  readonly status: number;
  readonly reason: string;
  /** The error code of a refused request (400, 413); absent for load shedding and connection-level refusals. */
  readonly code?: string;
  readonly remote?: string;
}

export interface RefusalLogOptions {
  readonly warn: (obj: Record<string, unknown>, msg: string) => void;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Lines logged one by one per window (default 10). */
  readonly burst?: number;
  /** Default 60 s. */
  readonly windowMs?: number;
}

export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #burst: number;
  readonly #windowMs: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #logged = 0;
  /** Suppressed in the current window, by status (reasons may carry request text: not a key). */
  #suppressed = new Map<string, number>();
  #flushTimer: unknown;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
    this.#burst = options.burst ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
  }

  record(r: Refusal): void {
    const now = this.#o.clock.nowMs();
    if (now - this.#windowStart >= this.#windowMs) {
      this.flush();
      this.#windowStart = now;
      this.#logged = 0;
    }
    if (this.#logged < this.#burst) {
      this.#logged++;
      this.#o.warn({ status: r.status, ...(r.code ? { code: r.code } : {}), reason: r.reason.slice(0, 200), ...(r.remote ? { remote: r.remote } : {}) }, 'injector: request refused');
      return;
    }
    const key = String(r.status);
    this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
    // The summary comes at the end of the window even when nothing else arrives.
    this.#flushTimer ??= this.#o.timers.setTimeout(() => {
      this.#flushTimer = undefined;
      this.flush();
    }, Math.max(0, this.#windowStart + this.#windowMs - now));
  }

  /** Logs the summary of what was suppressed so far, if anything (also at close). */
  flush(): void {
    if (this.#flushTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#suppressed.size === 0) return;
    const counts = Object.fromEntries(this.#suppressed);
    const total = [...this.#suppressed.values()].reduce((a, b) => a + b, 0);
    this.#suppressed = new Map();
    this.#o.warn({ suppressed: total, counts }, 'injector: more requests refused (not logged one by one)');
  }
}
