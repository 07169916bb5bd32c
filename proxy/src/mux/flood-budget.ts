// The flood budget of a multiplexed session: frames that carry nothing or make work for nothing (PING, empty DATA,
// window credit for no byte sent, frames for ended streams, resets, streams ended before any answer) allowed per
// second of the session's clock. Per second, not per sweep: a busy session's sweep comes only every keepalive
// interval, and a budget renewed there would be stricter than the documented one for a caller that cancels much.

/** Such frames allowed within one second; the next one past it ends the session as a flood. */
export const EMPTY_FRAME_BUDGET = 2_000;

export class FloodBudget {
  #spent = 0;
  #sinceMs = Number.NEGATIVE_INFINITY;

  /** Counts one such frame at `nowMs`; false once more than the budget came within the current second. */
  spend(nowMs: number): boolean {
    if (nowMs - this.#sinceMs >= 1_000) {
      this.#sinceMs = nowMs;
      this.#spent = 0;
    }
    return ++this.#spent <= EMPTY_FRAME_BUDGET;
  }
}
