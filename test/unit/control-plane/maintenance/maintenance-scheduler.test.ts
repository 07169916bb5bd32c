// The maintenance scheduler on a fake wall clock and fake timers (nothing sleeps): tasks run on their own
// wall-clock periods, a clock that jumps neither floods nor starves them, an async task runs once at a time and
// is waited for, failures are reported and do not stop the others, stop() ends it.

import { describe, expect, test } from 'vitest';
import { MaintenanceScheduler, type MaintenanceTask } from '../../../../control-plane/src/maintenance/maintenance-scheduler.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function counting(name: string, everyMs: number, runs: Record<string, number>, run?: () => unknown): MaintenanceTask {
  runs[name] = 0;
  return {
    name,
    everyMs,
    failure: `${name} failed`,
    run: () => {
      runs[name]!++;
      return run?.();
    },
  };
}

function scheduler(time: FakeTime, tasks: MaintenanceTask[], failures: string[] = []) {
  return new MaintenanceScheduler({ clock: time, timers: time, checkEveryMs: 1_000, tasks, onFailure: (t, e) => failures.push(`${t.failure}: ${(e as Error).message}`) });
}

describe('MaintenanceScheduler', () => {
  test('each task runs on its own period: every second, every 5 s, every minute', () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const s = scheduler(time, [counting('tick', 1_000, runs), counting('ca', 5_000, runs), counting('sweep', 60_000, runs)]);
    s.start();
    time.advance(999);
    expect(runs).toEqual({ tick: 0, ca: 0, sweep: 0 });
    time.advance(1);
    expect(runs).toEqual({ tick: 1, ca: 0, sweep: 0 });
    time.advance(119_000);
    expect(runs).toEqual({ tick: 120, ca: 24, sweep: 2 });
  });

  test('a clock that jumps forward runs each due task once, not once per missed period', () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const s = scheduler(time, [counting('tick', 1_000, runs), counting('prune', 3_600_000, runs)]);
    s.start();
    time.set(time.nowMs() + 10 * 3_600_000); // the host slept ten hours; no timer fired meanwhile
    time.advance(1_000);
    expect(runs).toEqual({ tick: 1, prune: 1 });
    // …and the next turn is a full period later, not ten turns in a row.
    time.advance(3_599_000);
    expect(runs['prune']).toBe(1);
    time.advance(1_000);
    expect(runs['prune']).toBe(2);
  });

  test('a clock set back does not postpone a task by the size of the jump', () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const s = scheduler(time, [counting('ca', 5_000, runs)]);
    s.start();
    time.advance(5_000);
    expect(runs['ca']).toBe(1);
    time.set(time.nowMs() - 3_600_000);
    time.advance(6_000);
    expect(runs['ca']).toBe(1 + 1);
  });

  test('a check that comes a little early (timer and wall clock drift) still gives an every-check task its turn', () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const s = scheduler(time, [counting('tick', 1_000, runs)]);
    s.start();
    const t0 = time.nowMs();
    for (let i = 1; i <= 10; i++) {
      time.set(t0 + i * 1_000 - 2); // the wall clock reads 2 ms short each time the timer fires
      s.runDue();
    }
    expect(runs['tick']).toBe(10);
  });

  test('an async task runs once at a time: a turn while it runs is skipped; settled() waits for it', async () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    let finish: () => void = () => {};
    const s = scheduler(time, [counting('ca', 5_000, runs, () => new Promise<void>((r) => (finish = r)))]);
    s.start();
    time.advance(20_000);
    expect(runs['ca']).toBe(1);
    let settled = false;
    const waiting = s.settled().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    finish();
    await waiting;
    expect(settled).toBe(true);
    time.advance(5_000);
    expect(runs['ca']).toBe(2);
  });

  test('a throwing or rejecting task is reported with its message; the other tasks keep their schedule', async () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const failures: string[] = [];
    const tasks = [
      counting('tick', 1_000, runs, () => {
        throw new Error('boom');
      }),
      counting('ca', 2_000, runs, () => Promise.reject(new Error('disk full'))),
      counting('sweep', 1_000, runs),
    ];
    const s = scheduler(time, tasks, failures);
    s.start();
    time.advance(2_000);
    await s.settled();
    expect(runs).toEqual({ tick: 2, ca: 1, sweep: 2 });
    expect(failures).toEqual(['tick failed: boom', 'tick failed: boom', 'ca failed: disk full']);
  });

  test('stop() ends the timer: nothing runs afterwards; start() twice keeps one timer', () => {
    const time = new FakeTime();
    const runs: Record<string, number> = {};
    const s = scheduler(time, [counting('tick', 1_000, runs)]);
    s.start();
    s.start();
    expect(time.pending).toBe(1);
    time.advance(3_000);
    s.stop();
    expect(time.pending).toBe(0);
    time.advance(10_000);
    expect(runs['tick']).toBe(3);
  });
});
