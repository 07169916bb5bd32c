// Failures logged without flooding: the first of a kind (what failed, its code or an uncoded error's text, and an
// optional scope such as a dashboard panel) is logged at once, then at most once per interval, with how many like it
// were left out since.
import type { Clock } from '../../../common/clock.js';
import { describeError, isTesseraError } from '../../../common/errors.js';
import type { ControlPlaneLogger } from '../logger.js';
import { OncePerInterval } from '../../../common/once-per-interval.js';

export const FAILURE_LOG_EVERY_MS = 60_000;

export class FailureLog {
  readonly #log: ControlPlaneLogger;
  readonly #clock: Clock;
  /** Keys bounded by the messages, codes and scopes the code base has. */
  readonly #gate: OncePerInterval;

  constructor(log: ControlPlaneLogger, clock: Clock, everyMs = FAILURE_LOG_EVERY_MS) {
    this.#log = log;
    this.#clock = clock;
    this.#gate = new OncePerInterval(everyMs);
  }

  report(message: string, e: unknown, fields: Record<string, unknown> = {}, scope = ''): void {
    const code = isTesseraError(e) ? e.code : 'uncoded';
    // Uncoded errors (bugs, a driver's own) are told apart by their text, so one does not hide another.
    const kind = isTesseraError(e) ? code : `${code}:${describeError(e).slice(0, 120)}`;
    const told = this.#gate.pass(`${message}\u0000${kind}\u0000${scope}`, this.#clock.nowMs());
    if (!told) return;
    this.#log.error({ ...fields, code, err: describeError(e), ...(told.leftOut ? { leftOut: told.leftOut } : {}) }, message);
  }
}
