// A wall clock with sub-millisecond resolution, for timing exchanges: Date.now() counts whole milliseconds, so a
// 0.3 ms loopback request logged durationMs 0 and the lowest duration buckets (0.5 ms, 1 ms) could not be told
// apart. Time is the monotonic clock (performance.now()) plus an origin, so it never jumps in normal operation and
// back-to-back reads never go backwards; at most once a second it is compared with the wall clock, and re-anchored
// when they differ by 2 ms or more (a step by NTP or an operator), so a stepped wall clock is seen within ~1 s and
// certificate validity keeps following it. Readings are fractional: integer sinks floor them.
import type { Clock } from './clock.js';

export interface PreciseClockSources {
  /** Monotonic milliseconds (fractional), e.g. performance.now(). */
  readonly monotonicMs: () => number;
  /** Wall-clock epoch milliseconds, e.g. Date.now(). */
  readonly wallMs: () => number;
  /** The wall-clock time at monotonic zero, e.g. performance.timeOrigin. */
  readonly originMs: number;
}

/** Differences from the wall clock below this are the wall clock's own millisecond truncation and drift. */
export const PRECISE_CLOCK_STEP_MS = 2;
/** The wall clock is read at most this often (monotonic time), so a step is seen within it. */
export const PRECISE_CLOCK_CHECK_MS = 1_000;

export class PreciseWallClock implements Clock {
  readonly #s: PreciseClockSources;
  #origin: number;
  #nextCheck = 0;

  constructor(sources: PreciseClockSources) {
    this.#s = sources;
    this.#origin = sources.originMs;
  }

  nowMs(): number {
    const m = this.#s.monotonicMs();
    if (m >= this.#nextCheck) {
      this.#nextCheck = m + PRECISE_CLOCK_CHECK_MS;
      const wall = this.#s.wallMs();
      if (Math.abs(wall - (this.#origin + m)) >= PRECISE_CLOCK_STEP_MS) this.#origin = wall - m;
    }
    return this.#origin + m;
  }
}

/** The process's precise wall clock: performance.now() anchored at performance.timeOrigin, checked with Date.now(). */
export function preciseSystemClock(): Clock {
  return new PreciseWallClock({ monotonicMs: () => performance.now(), wallMs: () => Date.now(), originMs: performance.timeOrigin });
}
