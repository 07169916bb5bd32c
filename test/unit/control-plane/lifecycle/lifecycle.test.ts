// The control plane's life-cycle pieces: a failed start undoes what it opened (newest first, every step even when
// one throws); a relay fired before it is wired does nothing; close runs its steps in order, bounds the listeners
// by what is left of the deadline (fake timers, nothing sleeps) and returns the first close when called twice.

import { describe, expect, test } from 'vitest';
import { Relay } from '../../../../control-plane/src/lifecycle/relay.js';
import { shutdown } from '../../../../control-plane/src/lifecycle/shutdown.js';
import { UndoStack } from '../../../../common/undo-stack.js';
import { FakeTime } from '../../../helpers/fake-time.js';

describe('UndoStack', () => {
  test('a failing start undoes every step newest first, even past a step that throws, and rethrows its error', async () => {
    const undo = new UndoStack();
    const done: string[] = [];
    const failure = new Error('listen EADDRINUSE');
    const started = undo.guard(async () => {
      undo.push(() => done.push('db'));
      undo.push(() => {
        throw new Error('already closed');
      });
      undo.push(async () => done.push('server'));
      throw failure;
    });
    await expect(started).rejects.toBe(failure);
    expect(done).toEqual(['server', 'db']);
  });

  test('a start that succeeds undoes nothing', async () => {
    const undo = new UndoStack();
    const done: string[] = [];
    const started = undo.guard(async () => {
      undo.push(() => done.push('db'));
      return 'handle';
    });
    await expect(started).resolves.toBe('handle');
    expect(done).toEqual([]);
  });
});

describe('Relay', () => {
  test('fired before connect() it does nothing; afterwards it reaches the receiver', () => {
    const relay = new Relay();
    let n = 0;
    relay.fire();
    relay.connect(() => n++);
    relay.fire();
    relay.fire();
    expect(n).toBe(2);
  });
});

describe('shutdown', () => {
  function plan(time: FakeTime, steps: string[], listener: () => Promise<unknown>) {
    return shutdown({
      clock: time,
      timers: time,
      quiesce: [() => steps.push('not ready'), () => steps.push('scheduler stopped')],
      drain: async (graceMs) => {
        steps.push(`grpc drained (${graceMs} ms)`);
        time.set(time.nowMs() + 3_000); // the drain took 3 s of the deadline
      },
      listeners: [listener],
      background: [() => steps.push('background stopped')],
      settled: async () => steps.push('maintenance settled'),
      release: [() => steps.push('store closed')],
      onClosed: () => steps.push('stopped'),
    });
  }

  test('steps run in order; a listener that never closes is given only what is left of the deadline', async () => {
    const time = new FakeTime();
    const steps: string[] = [];
    const close = plan(time, steps, () => new Promise(() => {}));
    const closing = close(10_000);
    await new Promise((r) => setImmediate(r));
    expect(steps).toEqual(['not ready', 'scheduler stopped', 'grpc drained (9500 ms)']);
    expect(time.pending).toBe(1);
    time.advance(6_999);
    await new Promise((r) => setImmediate(r));
    expect(steps).not.toContain('store closed');
    time.advance(1); // 10 s - 3 s spent draining = 7 s: the listeners are given up on
    await closing;
    expect(steps.slice(3)).toEqual(['background stopped', 'maintenance settled', 'store closed', 'stopped']);
  });

  test('called twice, it closes once', async () => {
    const time = new FakeTime();
    const steps: string[] = [];
    const close = plan(time, steps, async () => undefined);
    const [a, b] = [close(1_000), close(1_000)];
    expect(a).toBe(b);
    await a;
    expect(steps.filter((s) => s === 'stopped')).toHaveLength(1);
  });
});
