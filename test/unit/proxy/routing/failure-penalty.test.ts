// The failure penalty of one endpoint (audit 57c F2): twice the typical latency for a first failure, doubling with
// each one in a row up to the cap, at least an unanswered attempt's wait; fading ten times faster than the
// latency decay time; a success ends the streak and halves what is left; proven once it answered.
import { describe, expect, test } from 'vitest';
import { FailurePenalty } from '../../../../proxy/src/routing/failure-penalty.js';

const SCALE = { typicalMs: 4, waitedMs: 0, capMs: 60_000 };

describe('FailurePenalty', () => {
  test('none until a failure', () => {
    const p = new FailurePenalty(10_000);
    expect(p.valueMs(0)).toBe(0);
    expect(p.failing).toBe(false);
    p.succeeded(5);
    expect(p.valueMs(5)).toBe(0);
  });

  test('each failure in a row doubles it, from twice the typical latency, up to the cap', () => {
    const p = new FailurePenalty(10_000);
    const seen: number[] = [];
    for (let i = 0; i < 16; i++) {
      p.failed(0, SCALE);
      seen.push(p.valueMs(0));
    }
    expect(seen.slice(0, 4)).toEqual([8, 16, 32, 64]);
    expect(seen.at(-1)).toBe(60_000);
    expect(p.failing).toBe(true);
  });

  test('an unanswered attempt costs at least its wait (a timeout); never more than the cap', () => {
    const p = new FailurePenalty(10_000);
    p.failed(0, { ...SCALE, waitedMs: 30_000 });
    expect(p.valueMs(0)).toBe(30_000);
    const q = new FailurePenalty(10_000);
    q.failed(0, { ...SCALE, waitedMs: 90_000 });
    expect(q.valueMs(0)).toBe(60_000);
  });

  test('fades with a time constant of a tenth of the decay time; a clock that went back does not grow it', () => {
    const p = new FailurePenalty(10_000);
    p.failed(1_000, SCALE);
    expect(p.valueMs(2_000)).toBeCloseTo(8 * Math.exp(-1), 9);
    expect(p.valueMs(500)).toBe(8);
  });

  test('a failure while one is still high keeps the higher', () => {
    const p = new FailurePenalty(10_000);
    p.failed(0, { ...SCALE, waitedMs: 10_000 });
    p.failed(0, SCALE); // the second in a row: 16 ms, below what is left
    expect(p.valueMs(0)).toBe(10_000);
  });

  test('a success ends the streak and halves what is left; successes wear it away to nothing', () => {
    const p = new FailurePenalty(10_000);
    for (let i = 0; i < 3; i++) p.failed(0, SCALE);
    expect(p.valueMs(0)).toBe(32);
    p.succeeded(0);
    expect(p.failing).toBe(false);
    expect(p.valueMs(0)).toBe(16);
    p.failed(0, SCALE); // a new streak: 8 ms, below the 16 left
    expect(p.valueMs(0)).toBe(16);
    for (let i = 0; i < 20; i++) p.succeeded(0);
    expect(p.valueMs(0)).toBe(0);
  });

  test('proven once it answered, until it fails again', () => {
    const p = new FailurePenalty(10_000);
    expect(p.proven).toBe(false);
    p.failed(0, SCALE);
    p.succeeded(1);
    expect(p.proven).toBe(true);
    p.failed(2, SCALE);
    expect(p.proven).toBe(false);
    p.succeeded(3);
    expect(p.proven).toBe(true);
  });
});
