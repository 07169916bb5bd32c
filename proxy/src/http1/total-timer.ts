// The per-exchange timer of a total timeout (a listener's or route's `timeout`). The listener's 1 s sweep alone let
// a late answer through and its 504 come up to a second late (audit 19a F1): an exchange with a total gets a timer
// at its deadline, as an HTTP/2 stream does (h2-forward.ts). Opt-in: an exchange without a total gets none, so
// the hot path pays nothing for it.
import type { Timers } from '../../../shared-io/timers.js';

/** One exchange's timer at a time; `due` runs once its deadline has passed by `nowMs()`. */
export class TotalTimer {
  readonly #timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly #nowMs: () => number;
  #handle: unknown = undefined;

  constructor(timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>, nowMs: () => number) {
    this.#timers = timers;
    this.#nowMs = nowMs;
  }

  /** Arms for `deadlineMs` (a no-op for Infinity: no total), replacing any earlier timer. */
  arm(deadlineMs: number, due: () => void): void {
    this.clear();
    if (deadlineMs === Number.POSITIVE_INFINITY) return;
    const fire = (): void => {
      const left = deadlineMs - this.#nowMs();
      // A timer may fire a tick early by the injected clock: it waits out the rest rather than miss the deadline.
      if (left > 0) this.#handle = this.#timers.setTimeout(fire, left);
      else {
        this.#handle = undefined;
        due();
      }
    };
    this.#handle = this.#timers.setTimeout(fire, Math.max(0, deadlineMs - this.#nowMs()));
  }

  clear(): void {
    if (this.#handle === undefined) return;
    this.#timers.clearTimeout(this.#handle);
    this.#handle = undefined;
  }
}
