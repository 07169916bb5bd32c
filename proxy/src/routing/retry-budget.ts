// The retry budget of one service (Linkerd's RetryBudget: retry_ratio, min_retries_per_second, ttl): how many
// retries the requests of the last ttl allow, so that retries cannot multiply the load of a failing service.
import type { RetrySettings } from '../config/routing-config.js';

/** The window is counted in this many buckets: old requests leave it a tenth of a ttl at a time, not one by one. */
const BUCKETS = 10;

export type RetryBudgetSettings = Pick<RetrySettings, 'budgetRatio' | 'minRetriesPerSecond' | 'budgetTtlMs'>;

/**
 * In every ttl window, retries ≤ budgetRatio × requests + minRetriesPerSecond × ttl seconds. The floor lets a
 * service with little traffic retry at all; the ratio bounds the extra load under sustained failure.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #reserve: number;
  readonly #bucketMs: number;
  readonly #nowMs: () => number;
  /** Per bucket: the bucket number it counts (time / bucketMs), its requests and its retries. */
  readonly #epochs = new Float64Array(BUCKETS).fill(-1);
  readonly #deposits = new Float64Array(BUCKETS);
  readonly #withdrawals = new Float64Array(BUCKETS);

  /** `nowMs` is called as a plain function: pass `() => clock.nowMs()`. */
  constructor(settings: RetryBudgetSettings, nowMs: () => number) {
    this.#ratio = Math.max(0, settings.budgetRatio);
    const ttlMs = Math.max(BUCKETS, settings.budgetTtlMs);
    this.#reserve = Math.max(0, settings.minRetriesPerSecond) * (ttlMs / 1000);
    this.#bucketMs = ttlMs / BUCKETS;
    this.#nowMs = nowMs;
  }

  /** Counts one original request (never a retry: retries must not earn more retries). */
  deposit(): void {
    this.#deposits[this.#bucket()]! += 1;
  }

  /** Takes one retry from the budget; false (and nothing taken) when the window's retries are spent. */
  tryWithdraw(): boolean {
    const i = this.#bucket();
    let requests = 0;
    let retries = 0;
    for (let b = 0; b < BUCKETS; b++) {
      requests += this.#deposits[b]!;
      retries += this.#withdrawals[b]!;
    }
    if (retries + 1 > this.#ratio * requests + this.#reserve) return false;
    this.#withdrawals[i]! += 1;
    return true;
  }

  /** Gives back a withdrawal whose retry could not be made after all (no endpoint left to try). */
  refund(): void {
    const i = this.#bucket();
    if (this.#withdrawals[i]! > 0) this.#withdrawals[i]! -= 1;
  }

  /** The current bucket's index, after clearing every bucket that has left the window. */
  #bucket(): number {
    const epoch = Math.floor(this.#nowMs() / this.#bucketMs);
    const i = ((epoch % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.#epochs[i] !== epoch) {
      // Clear what fell out of the window: every bucket not counting one of the last BUCKETS epochs.
      for (let b = 0; b < BUCKETS; b++) {
        const e = this.#epochs[b]!;
        if (e <= epoch - BUCKETS || e > epoch || b === i) {
          this.#epochs[b] = b === i ? epoch : -1;
          this.#deposits[b] = 0;
          this.#withdrawals[b] = 0;
        }
      }
    }
    return i;
  }
}
