// A token bucket per identity (wall clock injected): `burst` requests at once, refilled at `perMinute`.
// Buckets that are full again are forgotten, so memory follows the active identities only.
import type { Clock } from '../../../common/clock.js';

export interface RateLimit {
  readonly burst: number;
  readonly perMinute: number;
}

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(limit: RateLimit, clock: Clock) {
    this.#limit = limit;
    this.#clock = clock;
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const now = this.#clock.nowMs();
    const b = this.#buckets.get(key);
    const refill = b ? ((now - b.atMs) * this.#limit.perMinute) / 60_000 : this.#limit.burst;
    const tokens = Math.min(this.#limit.burst, (b?.tokens ?? 0) + Math.max(0, refill));
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, atMs: now });
      return false;
    }
    this.#buckets.set(key, { tokens: tokens - 1, atMs: now });
    return true;
  }

  /** Drops buckets that have refilled completely (call on a slow tick). */
  sweep(): void {
    const now = this.#clock.nowMs();
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.atMs) * this.#limit.perMinute) / 60_000 >= this.#limit.burst) this.#buckets.delete(k);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
