// Periodic upkeep on wall-clock intervals: each task is due `everyMs` after its last turn by the injected clock,
// looked for on one injected interval timer (so a unit test drives it with a fake clock and fake timers). An
// async task runs once at a time; stop() ends the timer and settled() waits for what is still running.

import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';

export interface MaintenanceTask {
  readonly name: string;
  readonly everyMs: number;
  /** What the log says when the task throws or rejects. */
  readonly failure: string;
  run(): unknown;
}

export interface MaintenanceSchedulerOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** How often due tasks are looked for: the scheduler's resolution. */
  readonly checkEveryMs: number;
  readonly tasks: readonly MaintenanceTask[];
  /** A task threw or rejected; the others keep their schedule. */
  readonly onFailure: (task: MaintenanceTask, error: unknown) => void;
}

interface Slot {
  readonly task: MaintenanceTask;
  dueMs: number;
  running: Promise<void> | undefined;
}

export class MaintenanceScheduler {
  readonly #o: MaintenanceSchedulerOptions;
  readonly #slots: Slot[];
  #timer: unknown;

  constructor(opts: MaintenanceSchedulerOptions) {
    this.#o = opts;
    this.#slots = opts.tasks.map((task) => ({ task, dueMs: 0, running: undefined }));
  }

  start(): void {
    if (this.#timer !== undefined) return;
    const now = this.#o.clock.nowMs();
    for (const s of this.#slots) s.dueMs = now + s.task.everyMs;
    this.#timer = this.#o.timers.setInterval(() => this.runDue(), this.#o.checkEveryMs);
  }

  /** Gives every task that is due its turn (the timer calls this; tests may too). */
  runDue(): void {
    const now = this.#o.clock.nowMs();
    // Half a check early counts as due: the timer and the wall clock drift apart by a millisecond or so, and a
    // task due on every check must not skip one for that.
    const slack = this.#o.checkEveryMs / 2;
    for (const s of this.#slots) {
      const every = s.task.everyMs;
      // A clock set back would otherwise postpone the task by the size of the jump.
      if (s.dueMs - now > every) s.dueMs = now + every;
      if (now + slack < s.dueMs) continue;
      // A fixed grid keeps the period; turns missed (a clock jumped forward, a busy loop) are not caught up.
      s.dueMs = s.dueMs + every > now ? s.dueMs + every : now + every;
      // A turn that comes while the previous one still runs is skipped, not queued.
      if (!s.running) this.#run(s);
    }
  }

  stop(): void {
    if (this.#timer === undefined) return;
    this.#o.timers.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves once no task is running (a CA commit finishes before the store it writes to is closed). */
  async settled(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.running));
  }

  #run(s: Slot): void {
    let result: unknown;
    try {
      result = s.task.run();
    } catch (e) {
      this.#o.onFailure(s.task, e);
      return;
    }
    if (!(result instanceof Promise)) return;
    s.running = result.then(
      () => undefined,
      (e: unknown) => this.#o.onFailure(s.task, e),
    );
    void s.running.finally(() => {
      s.running = undefined;
    });
  }
}
