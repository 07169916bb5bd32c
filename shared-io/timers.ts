// The one injected timer interface for code that schedules work: real (unref'd) timers in production, a fake
// driven by the test in unit tests, so nothing has to sleep to see a timer fire.

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Real timers, unref'd: a timer alone never keeps the process alive (listeners do). */
export const realTimers: Timers = Object.freeze({
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms).unref(),
  clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn: () => void, ms: number) => setInterval(fn, ms).unref(),
  clearInterval: (h: unknown) => clearInterval(h as NodeJS.Timeout),
});
