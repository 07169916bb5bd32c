// When a process gives memory back: once at start-up, then only after a whole quiet period with grown young space
// or resident memory grown past its size after the last trim, that is still quiet a second later; never while the loop is busy or traffic has just come back, nothing after
// stop(), and nothing more once a trim failed.
import { describe, expect, test } from 'vitest';
import { HEAP_TRIM_CHECK_MS, HEAP_TRIM_CONFIRM_MS, HEAP_TRIM_MIN_GROWTH_BYTES, HEAP_TRIM_MIN_YOUNG_BYTES, HEAP_TRIM_QUIET_SHARE, type HeapTrimCause, IdleHeapTrim } from '../../../shared-io/idle-heap-trim.js';
import { FakeTime } from '../../helpers/fake-time.js';

function harness() {
  const time = new FakeTime();
  const state = { busy: 0, young: 16 * 1024 * 1024, rss: 110 * 1024 * 1024, fail: false };
  const trims: HeapTrimCause[] = [];
  const errors: unknown[] = [];
  let calls = 0;
  const trimmer = new IdleHeapTrim({
    trim: async () => {
      calls++;
      if (state.fail) throw new Error('inspector gone');
      state.young = 256 * 1024;
      state.rss = 85 * 1024 * 1024;
    },
    timers: time,
    nowMs: () => time.nowMs(),
    busyShare: () => state.busy,
    youngBytes: () => state.young,
    residentBytes: () => state.rss,
    onTrim: (cause) => trims.push(cause),
    onError: (e) => errors.push(e),
  });
  const advance = async (ms: number) => {
    time.advance(ms);
    await new Promise((r) => setImmediate(r));
  };
  /** To the end of a check period (the check runs), then through the confirmation second. */
  const period = async () => {
    await advance(HEAP_TRIM_CHECK_MS);
    await advance(HEAP_TRIM_CONFIRM_MS);
  };
  return { time, state, trims, errors, trimmer, advance, period, calls: () => calls };
}

describe('IdleHeapTrim', () => {
  test('trims once at start-up, before start() resolves', async () => {
    const h = harness();
    await h.trimmer.start();
    expect(h.trims).toEqual(['startup']);
    h.trimmer.stop();
  });

  test('a quiet period with grown young space trims once the next second is quiet too; with little young space it does not', async () => {
    const h = harness();
    await h.trimmer.start();
    await h.period();
    expect(h.trims).toEqual(['startup']); // the start-up trim left 256 KiB
    h.state.young = HEAP_TRIM_MIN_YOUNG_BYTES;
    await h.advance(HEAP_TRIM_CHECK_MS - HEAP_TRIM_CONFIRM_MS); // to the next check
    expect(h.trims).toEqual(['startup']); // not yet: the confirmation second is running
    expect(h.time.pending).toBe(2);
    await h.advance(HEAP_TRIM_CONFIRM_MS);
    expect(h.trims).toEqual(['startup', 'idle']);
    h.trimmer.stop();
  });

  test('a quiet period after the old generation grew (young space already shrunk) trims once resident memory is 8 MB past its size after the last trim', async () => {
    const h = harness();
    await h.trimmer.start(); // 85 MB resident after it
    h.state.rss += HEAP_TRIM_MIN_GROWTH_BYTES - 1;
    await h.period();
    expect(h.trims).toEqual(['startup']);
    h.state.rss += 1;
    await h.period();
    expect(h.trims).toEqual(['startup', 'idle']);
    // Measured from the size after that trim (the fake trim leaves 85 MB): growth below the bar is left alone.
    h.state.rss = 85 * 1024 * 1024 + HEAP_TRIM_MIN_GROWTH_BYTES / 2;
    await h.period();
    await h.period();
    expect(h.trims).toEqual(['startup', 'idle']);
    h.state.busy = HEAP_TRIM_QUIET_SHARE;
    h.state.rss = 85 * 1024 * 1024 + HEAP_TRIM_MIN_GROWTH_BYTES;
    await h.period();
    expect(h.trims).toEqual(['startup', 'idle']); // busy: never
    h.trimmer.stop();
  });

  test('a busy period never trims, however much young space there is', async () => {
    const h = harness();
    await h.trimmer.start();
    h.state.young = 64 * 1024 * 1024;
    h.state.busy = HEAP_TRIM_QUIET_SHARE;
    for (let i = 0; i < 5; i++) await h.period();
    expect(h.trims).toEqual(['startup']);
    h.state.busy = HEAP_TRIM_QUIET_SHARE / 2;
    await h.period();
    expect(h.trims).toEqual(['startup', 'idle']);
    h.trimmer.stop();
  });

  test('traffic that comes back at the end of a quiet period (the confirmation second busy) is not paused', async () => {
    const h = harness();
    await h.trimmer.start();
    h.state.young = 64 * 1024 * 1024;
    await h.advance(HEAP_TRIM_CHECK_MS);
    h.state.busy = 0.2;
    await h.advance(HEAP_TRIM_CONFIRM_MS);
    expect(h.trims).toEqual(['startup']);
    await h.period(); // that period was busy
    expect(h.trims).toEqual(['startup']);
    h.state.busy = 0;
    await h.period();
    expect(h.trims).toEqual(['startup', 'idle']);
    h.trimmer.stop();
  });

  test('a failing trim is reported once, not thrown, and no trim is tried again', async () => {
    const h = harness();
    h.state.fail = true;
    await h.trimmer.start();
    expect(h.errors).toHaveLength(1);
    expect(h.time.pending).toBe(0);
    for (let i = 0; i < 3; i++) await h.period();
    expect(h.calls()).toBe(1);
    expect(h.errors).toHaveLength(1);
  });

  test('a trim that fails later stops the schedule', async () => {
    const h = harness();
    await h.trimmer.start();
    h.state.fail = true;
    h.state.young = 64 * 1024 * 1024;
    await h.period();
    expect(h.errors).toHaveLength(1);
    expect(h.time.pending).toBe(0);
  });

  test('stop() during a confirmation: no timer is left and nothing trims after it', async () => {
    const h = harness();
    await h.trimmer.start();
    h.state.young = 64 * 1024 * 1024;
    await h.advance(HEAP_TRIM_CHECK_MS);
    expect(h.time.pending).toBe(2); // the period and the confirmation
    h.trimmer.stop();
    expect(h.time.pending).toBe(0);
    await h.period();
    expect(h.trims).toEqual(['startup']);
  });
});
