// Bounds the reviews the webhook holds at once, by count and by request-body bytes, so that many concurrent or
// slow bodies cannot take the injector past its memory limit (audit 4, B1/B2: 150 held 1 MiB bodies reached
// 257 MiB). Each review's first `freeBytes` do not count against the byte budget: the API server's reviews (a few
// KiB) are bounded by the count alone and still get through while large bodies wait for budget. Large bodies are
// also paced (bytesPerSecond): each leaves its buffers to the garbage collector, and hundreds of them in a second
// outran it (250 concurrent 800 KB reviews: 240 MB of buffers not yet collected). A review that does not fit waits
// for a short while (a burst of pod creations queues, it is not refused), then it is refused.
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';

export interface AdmissionGateOptions {
  /** Reviews being read or answered at once. */
  readonly maxActive: number;
  /** Request-body bytes held at once across all active reviews, beyond each one's `freeBytes`. */
  readonly maxBytes: number;
  /** Bytes of each review's body that the count already bounds. */
  readonly freeBytes: number;
  /** Reviews waiting for a place; more are refused at once. */
  readonly maxWaiting: number;
  /** How long a review waits for a place before it is refused. */
  readonly maxWaitMs: number;
  /** Body bytes beyond `freeBytes` taken in per second, in bursts of up to `maxBytes`. */
  readonly bytesPerSecond: number;
  readonly timers: Timers;
  readonly clock: Clock;
}

export interface GatePass {
  /** Counts `n` more received body bytes; false when they do not fit the budget, and the review must then be refused. */
  take(n: number): boolean;
  /** Gives the place and its bytes back; later calls do nothing. */
  release(): void;
}

interface Waiter {
  readonly need: number;
  readonly grant: (pass: GatePass | null) => void;
  timer: unknown;
}

export class AdmissionGate {
  readonly #o: AdmissionGateOptions;
  #active = 0;
  #bytes = 0;
  readonly #waiting: Waiter[] = [];
  /** Pacing: bytes that may be taken in now (a token bucket holding at most maxBytes). */
  #allowance: number;
  #refilledAt: number;
  #pumpTimer: unknown;

  constructor(options: AdmissionGateOptions) {
    this.#o = options;
    this.#allowance = options.maxBytes;
    this.#refilledAt = options.clock.nowMs();
  }

  get active(): number {
    return this.#active;
  }

  /** Budget bytes in use (beyond the free share of each review). */
  get bytes(): number {
    return this.#bytes;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * A place for one review that will hold `declared` body bytes (its Content-Length; 0 when chunked, then counted
   * as they arrive): at once when it fits, else when enough is given back; null when the line is full, the review
   * could never fit, or the wait ran out.
   */
  acquire(declared: number): Promise<GatePass | null> {
    const need = Math.max(0, declared - this.#o.freeBytes);
    if (this.#fits(need)) return Promise.resolve(this.#open(need));
    if (this.#waiting.length >= this.#o.maxWaiting || need > this.#o.maxBytes) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter = { need, grant: resolve, timer: undefined };
      waiter.timer = this.#o.timers.setTimeout(() => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(null);
      }, this.#o.maxWaitMs);
      this.#waiting.push(waiter);
      this.#pump();
    });
  }

  #refill(): void {
    const now = this.#o.clock.nowMs();
    this.#allowance = Math.min(this.#o.maxBytes, this.#allowance + ((now - this.#refilledAt) * this.#o.bytesPerSecond) / 1000);
    this.#refilledAt = now;
  }

  /** Whether `need` more budget bytes may be held and taken in now. */
  #room(need: number): boolean {
    if (need === 0) return true;
    this.#refill();
    return this.#bytes + need <= this.#o.maxBytes && this.#allowance >= need;
  }

  #fits(need: number): boolean {
    return this.#active < this.#o.maxActive && this.#room(need);
  }

  #open(need: number): GatePass {
    this.#active++;
    this.#bytes += need;
    this.#allowance -= need;
    // Bytes received so far, and budget bytes counted for this review (at least what it declared).
    let held = 0;
    let counted = need;
    let open = true;
    return {
      take: (n) => {
        held += n;
        const over = Math.max(0, held - this.#o.freeBytes);
        if (over <= counted) return true;
        if (!this.#room(over - counted)) return false;
        this.#bytes += over - counted;
        this.#allowance -= over - counted;
        counted = over;
        return true;
      },
      release: () => {
        if (!open) return;
        open = false;
        this.#active--;
        this.#bytes -= counted;
        this.#pump();
      },
    };
  }

  /** Oldest first, but a waiter that fits is not held up by a larger one before it. */
  #pump(): void {
    for (let i = 0; i < this.#waiting.length && this.#active < this.#o.maxActive; ) {
      const w = this.#waiting[i]!;
      if (!this.#fits(w.need)) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#o.timers.clearTimeout(w.timer);
      w.grant(this.#open(w.need));
    }
    // Waiting for pacing only (no release will come to wake them): look again once the allowance has grown.
    const short = this.#waiting.find((w) => w.need > this.#allowance);
    if (short && this.#pumpTimer === undefined && this.#active < this.#o.maxActive) {
      const ms = Math.ceil(((short.need - this.#allowance) * 1000) / this.#o.bytesPerSecond);
      this.#pumpTimer = this.#o.timers.setTimeout(() => {
        this.#pumpTimer = undefined;
        this.#pump();
      }, Math.max(1, ms));
    }
  }
}
