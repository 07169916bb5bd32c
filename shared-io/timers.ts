// The one injected timer interface for code that schedules work: real (unref'd) timers in production, a fake
// driven by the test in unit tests, so nothing has to sleep to see a timer fire. Only this file and the clocks of
// common/ (clock.ts, precise-clock.ts) touch the process's own timers and clocks (test/unit/architecture.test.ts).

export interface Timers {
  /**
   * `hold: 'keep-alive'`: the real timer keeps the process alive while it waits (Node's own default), for a wait
   * the process must not exit under (a shutdown's deadline, a timer beside a request it races); otherwise unref'd.
   */
  setTimeout(fn: () => void, ms: number, hold?: 'keep-alive'): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Real timers, unref'd unless asked to hold: a timer alone never keeps the process alive (listeners do). */
export const realTimers: Timers = Object.freeze({
  setTimeout: (fn: () => void, ms: number, hold?: 'keep-alive') => (hold === undefined ? setTimeout(fn, ms).unref() : setTimeout(fn, ms)),
  clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn: () => void, ms: number) => setInterval(fn, ms).unref(),
  clearInterval: (h: unknown) => clearInterval(h as NodeJS.Timeout),
});
