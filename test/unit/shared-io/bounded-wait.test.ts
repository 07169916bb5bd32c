// settledWithin: the work's end or the bound, whichever is first, with the injected timers (nothing sleeps), and
// no timer left behind either way.
import { describe, expect, test } from 'vitest';
import { settledWithin } from '../../../shared-io/bounded-wait.js';
import { FakeTime } from '../../helpers/fake-time.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('settledWithin', () => {
  test('work that ends before the bound: true, and its timer is cleared', async () => {
    const time = new FakeTime();
    const work = deferred();
    const waited = settledWithin(work.promise, 1_000, time);
    time.advance(999);
    work.resolve();
    await expect(waited).resolves.toBe(true);
    expect(time.pending).toBe(0);
  });

  test('work still running at the bound: false, and the work is left to go on', async () => {
    const time = new FakeTime();
    const work = deferred();
    let ended = false;
    void work.promise.then(() => {
      ended = true;
    });
    const waited = settledWithin(work.promise, 1_000, time);
    time.advance(1_000);
    await expect(waited).resolves.toBe(false);
    expect(time.pending).toBe(0);
    work.resolve();
    await work.promise;
    expect(ended).toBe(true);
  });

  test('work that fails within the bound: the failure is passed on, the timer cleared', async () => {
    const time = new FakeTime();
    const work = deferred();
    const waited = settledWithin(work.promise, 1_000, time);
    work.reject(new Error('flush failed'));
    await expect(waited).rejects.toThrow('flush failed');
    expect(time.pending).toBe(0);
  });

  test('work already done: true without waiting for any timer', async () => {
    const time = new FakeTime();
    await expect(settledWithin(Promise.resolve(), 0, time)).resolves.toBe(true);
    expect(time.pending).toBe(0);
  });
});
