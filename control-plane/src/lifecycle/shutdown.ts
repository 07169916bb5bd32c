// The control plane's ordered close, bounded by a deadline: stop taking work, let unary calls finish on the gRPC
// listener, close the other listeners, stop background work, wait for a CA commit under way, then release the
// store. Called twice, it returns the first close.

import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import { settledWithin } from '../../../shared-io/bounded-wait.js';

export interface ShutdownPlan {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Stop taking work: readiness fails, the scheduler stops, Watch streams are told to go. */
  readonly quiesce: readonly (() => void)[];
  /** Stops the gRPC listener, giving calls in progress `graceMs`. */
  readonly drain: (graceMs: number) => Promise<unknown>;
  /** The other listeners, closed together within what is left of the deadline. */
  readonly listeners: readonly (() => Promise<unknown> | undefined)[];
  /** Background work (policy watcher, JWKS refresh, the registry's queued writes): stopped, and waited for. */
  readonly background: readonly (() => unknown)[];
  /** Resolves when work that writes to the store has finished. */
  readonly settled: () => Promise<unknown>;
  /** Last, in order: the store, then the data dir's lock (each waited for, each run even if one before failed). */
  readonly release: readonly (() => unknown)[];
  readonly onClosed: () => void;
}

export function shutdown(plan: ShutdownPlan): (deadlineMs?: number) => Promise<void> {
  let closed: Promise<void> | undefined;
  return (deadlineMs = 10_000) => {
    closed ??= (async () => {
      for (const q of plan.quiesce) q();
      const started = plan.clock.nowMs();
      await plan.drain(Math.max(0, deadlineMs - 500));
      const rest = Math.max(100, deadlineMs - (plan.clock.nowMs() - started));
      await settledWithin(Promise.allSettled(plan.listeners.map((l) => l())), rest, plan.timers);
      await Promise.allSettled(plan.background.map((b) => b()));
      await plan.settled();
      // Each is released even when one before it failed (the data dir's lock must not outlive a failed store close).
      let failure: { e: unknown } | undefined;
      for (const r of plan.release) {
        try {
          await r();
        } catch (e) {
          failure ??= { e };
        }
      }
      if (failure) throw failure.e;
      plan.onClosed();
    })();
    return closed;
  };
}
