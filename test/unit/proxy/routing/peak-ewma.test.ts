// The peak-EWMA latency estimate: starts at the default, jumps to a slower sample, decays toward faster ones with
// the time since the last sample, and decays toward 0 while no samples come.
import { describe, expect, test } from 'vitest';
import { PeakEwma } from '../../../../proxy/src/routing/peak-ewma.js';

describe('PeakEwma', () => {
  test('starts at the initial estimate', () => {
    expect(new PeakEwma(10_000, 30, 0).estimate(0)).toBe(30);
  });

  test('a slower sample replaces the estimate at once (the peak)', () => {
    const e = new PeakEwma(10_000, 30, 0);
    e.observe(200, 1);
    expect(e.estimate(1)).toBe(200);
  });

  test('a faster sample pulls the estimate with weight 1 - exp(-elapsed/decay)', () => {
    const e = new PeakEwma(1000, 100, 0);
    e.observe(0, 1000); // one decay time later: the old estimate keeps exp(-1) of its weight
    expect(e.estimate(1000)).toBeCloseTo(100 * Math.exp(-1), 9);
    e.observe(10, 1000); // no time passed: the sample still gets its least say, 1/16
    const afterBurst = 100 * Math.exp(-1) * (15 / 16) + 10 / 16;
    expect(e.estimate(1000)).toBeCloseTo(afterBurst, 9);
    e.observe(10, 1500);
    const w = Math.exp(-0.5);
    expect(e.estimate(1500)).toBeCloseTo(afterBurst * w + 10 * (1 - w), 9);
  });

  test('a spike at a high rate is forgotten within a few dozen answers; a replica slow on every answer stays high', () => {
    const busy = new PeakEwma(10_000, 10, 0);
    busy.observe(44, 1); // one scheduling spike
    for (let i = 0; i < 48; i++) busy.observe(10, 2 + i); // 48 answers in 48 ms: the time weight alone would keep ~44
    expect(busy.estimate(50)).toBeLessThan(12);
    const slow = new PeakEwma(10_000, 10, 0);
    for (let i = 0; i < 48; i++) slow.observe(60, 1 + i);
    expect(slow.estimate(48)).toBeCloseTo(60, 6);
  });

  test('many fast samples converge on their value; one slow sample is remembered as the peak', () => {
    const e = new PeakEwma(1000, 30, 0);
    let t = 0;
    for (let i = 0; i < 1000; i++) {
      t += 10;
      e.observe(5, t);
    }
    expect(e.estimate(t)).toBeCloseTo(5, 2);
    e.observe(80, t + 10);
    e.observe(5, t + 20);
    expect(e.estimate(t + 20)).toBeGreaterThan(75); // 10 ms of a 1 s decay: the peak barely moves
  });

  test('without samples the estimate decays toward the floor given (0 by default), ten times faster than samples blend, so an avoided endpoint is tried again', () => {
    const e = new PeakEwma(1000, 100, 0);
    expect(e.estimate(100)).toBeCloseTo(100 * Math.exp(-1), 9);
    expect(e.estimate(500)).toBeLessThan(1);
    expect(e.estimate(100, 4)).toBeCloseTo(4 + 96 * Math.exp(-1), 9);
    expect(e.estimate(5_000, 4)).toBeCloseTo(4, 6); // the service's typical latency: its requests in flight still count
    expect(e.estimate(5_000, 200)).toBe(100); // a floor above the estimate does not raise it
    expect(e.estimate(-10)).toBe(100); // a clock that went back: no growth
  });

  test('NaN and negative samples are ignored', () => {
    const e = new PeakEwma(1000, 30, 0);
    e.observe(Number.NaN, 10);
    e.observe(-5, 10);
    expect(e.estimate(0)).toBe(30);
  });
});
