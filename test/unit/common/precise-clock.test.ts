// The precise wall clock: sub-millisecond readings from a monotonic source, re-anchored to the wall clock only on
// a step (>= 2 ms) and checked at most once a second, so durations never jump or go negative in normal operation.
import { describe, expect, test } from 'vitest';
import { PRECISE_CLOCK_STEP_MS, PreciseWallClock } from '../../../common/precise-clock.js';

/** A fake monotonic and wall source: `advance` moves both; `step` moves only the wall clock (NTP, an operator). */
function fakeSources(originMs = 1_700_000_000_000.25) {
  const s = { mono: 0, wall: Math.floor(originMs), wallReads: 0 };
  return {
    s,
    sources: {
      monotonicMs: () => s.mono,
      wallMs: () => {
        s.wallReads++;
        return Math.floor(s.wall);
      },
      originMs,
    },
    advance(ms: number) {
      s.mono += ms;
      s.wall += ms;
    },
  };
}

describe('PreciseWallClock', () => {
  test('reads the origin plus the monotonic time, with its fraction', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    f.advance(0.3);
    expect(clock.nowMs()).toBeCloseTo(1_700_000_000_000.55, 6);
    f.advance(0.2);
    expect(clock.nowMs() % 1).not.toBe(0);
  });

  test('no jump without a step: the wall clock whole-millisecond truncation and small drift are not followed', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    const first = clock.nowMs();
    f.advance(1_500);
    f.s.wall += 1.5; // drift below the step threshold
    expect(clock.nowMs() - first).toBeCloseTo(1_500, 6);
  });

  test('a step forward is followed within a second, and not before the next check', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    clock.nowMs();
    f.s.wall += 60_000;
    f.advance(10);
    const before = clock.nowMs();
    expect(before).toBeLessThan(f.s.wall - 50_000); // not checked yet: no jump mid-second
    f.advance(1_000);
    expect(Math.abs(clock.nowMs() - f.s.wall)).toBeLessThan(1);
  });

  test('a step back is followed too (certificate validity reads this clock)', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    clock.nowMs();
    f.s.wall -= 3_600_000;
    f.advance(1_000);
    expect(Math.abs(clock.nowMs() - f.s.wall)).toBeLessThan(1);
  });

  test('the wall clock is read at most once a second, not per reading', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    for (let i = 0; i < 10_000; i++) {
      f.advance(0.05);
      clock.nowMs();
    }
    // 500 ms of monotonic time: the first reading's check only.
    expect(f.s.wallReads).toBe(1);
  });

  test('back-to-back readings never go backwards without a step', () => {
    const f = fakeSources();
    const clock = new PreciseWallClock(f.sources);
    let last = clock.nowMs();
    for (let i = 0; i < 5_000; i++) {
      f.advance(i % 7 === 0 ? 0 : 0.37);
      const now = clock.nowMs();
      expect(now - last).toBeGreaterThanOrEqual(0);
      last = now;
    }
  });

  test('the real sources: fractional, close to Date.now(), and not decreasing', async () => {
    const { preciseSystemClock } = await import('../../../common/precise-clock.js');
    const clock = preciseSystemClock();
    // Bracketed by wall readings: a busy machine may pause the test between any two lines.
    const before = Date.now();
    const first = clock.nowMs();
    const after = Date.now();
    expect(first).toBeGreaterThanOrEqual(before - PRECISE_CLOCK_STEP_MS);
    expect(first).toBeLessThan(after + 1 + PRECISE_CLOCK_STEP_MS);
    const readings = [first, ...Array.from({ length: 200 }, () => clock.nowMs())];
    expect(readings.some((r) => r % 1 !== 0)).toBe(true);
    for (let i = 1; i < readings.length; i++) expect(readings[i]!).toBeGreaterThanOrEqual(readings[i - 1]!);
  });
});
