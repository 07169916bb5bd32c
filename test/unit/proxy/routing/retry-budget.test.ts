// The retry budget: retries within a ttl window stay ≤ ratio × requests + the per-second floor, the window slides,
// and a refused withdrawal takes nothing.
import { describe, expect, test } from 'vitest';
import { RetryBudget } from '../../../../proxy/src/routing/retry-budget.js';
import { FakeTime } from '../../../helpers/fake-time.js';

function budget(ratio: number, minPerSecond: number, ttlMs = 10_000) {
  const time = new FakeTime(0);
  return { time, b: new RetryBudget({ budgetRatio: ratio, minRetriesPerSecond: minPerSecond, budgetTtlMs: ttlMs }, () => time.nowMs()) };
}

/** `seconds` of a service where every attempt fails: each request is retried while the budget allows (≤ maxRetries). */
function failingStream(b: RetryBudget, time: FakeTime, rps: number, seconds: number, maxRetries = 2): { requests: number; retries: number } {
  let requests = 0;
  let retries = 0;
  for (let i = 0; i < rps * seconds; i++) {
    b.deposit();
    requests++;
    for (let r = 0; r < maxRetries && b.tryWithdraw(); r++) retries++;
    time.advance(1000 / rps);
  }
  return { requests, retries };
}

describe('RetryBudget', () => {
  test('ratio 0.2, no floor: a sustained stream of failures gets at most 20 % extra attempts, and close to it', () => {
    const { time, b } = budget(0.2, 0);
    const { requests, retries } = failingStream(b, time, 100, 60);
    expect(requests).toBe(6000);
    expect(retries).toBeLessThanOrEqual(0.2 * requests);
    expect(retries).toBeGreaterThanOrEqual(0.19 * requests); // the budget is spent, not hoarded
  });

  test('ratio 0.2 with the default floor (10/s): extra attempts ≤ 20 % + 10 per second', () => {
    const { time, b } = budget(0.2, 10);
    const seconds = 60;
    const { requests, retries } = failingStream(b, time, 100, seconds);
    expect(retries).toBeLessThanOrEqual(0.2 * requests + 10 * seconds);
    expect(retries).toBeGreaterThan(0.2 * requests); // the floor is on top of the ratio
  });

  test('in every ttl window, retries ≤ ratio × requests of the window + floor × ttl', () => {
    const { time, b } = budget(0.2, 1, 10_000);
    const events: { at: number; retry: boolean }[] = [];
    for (let i = 0; i < 3000; i++) {
      time.advance(i % 500 < 250 ? 5 : 50); // bursts and lulls
      b.deposit();
      events.push({ at: time.nowMs(), retry: false });
      while (b.tryWithdraw()) events.push({ at: time.nowMs(), retry: true });
    }
    for (let start = 0; start < time.nowMs(); start += 250) {
      const win = events.filter((e) => e.at >= start && e.at < start + 10_000);
      const req = win.filter((e) => !e.retry).length;
      const ret = win.length - req;
      expect(ret).toBeLessThanOrEqual(0.2 * req + 10);
    }
  });

  test('with no requests only the floor is allowed: minRetriesPerSecond × ttl seconds', () => {
    const { b } = budget(0.2, 10, 10_000);
    let n = 0;
    while (b.tryWithdraw() && n < 1000) n++;
    expect(n).toBe(100);
    expect(b.tryWithdraw()).toBe(false);
  });

  test('the window slides: retries spent a ttl ago are available again', () => {
    const { time, b } = budget(0.5, 0, 10_000);
    for (let i = 0; i < 10; i++) b.deposit();
    let n = 0;
    while (b.tryWithdraw()) n++;
    expect(n).toBe(5);
    time.advance(5_000);
    expect(b.tryWithdraw()).toBe(false); // still inside the window
    for (let i = 0; i < 2; i++) b.deposit();
    expect(b.tryWithdraw()).toBe(true);
    time.advance(5_000); // the first 10 requests and 5 retries left the window
    expect(b.tryWithdraw()).toBe(false); // 2 requests × 0.5 = 1, and that one is spent
    b.deposit();
    b.deposit();
    expect(b.tryWithdraw()).toBe(true);
    time.advance(20_000);
    expect(b.tryWithdraw()).toBe(false);
  });

  test('ratio 0 and floor 0: never a retry', () => {
    const { b } = budget(0, 0);
    for (let i = 0; i < 100; i++) b.deposit();
    expect(b.tryWithdraw()).toBe(false);
  });

  test('a clock that steps back does not count old buckets twice or grow the budget', () => {
    const { time, b } = budget(0.2, 0, 10_000);
    time.advance(50_000);
    for (let i = 0; i < 10; i++) b.deposit();
    expect(b.tryWithdraw()).toBe(true);
    expect(b.tryWithdraw()).toBe(true);
    expect(b.tryWithdraw()).toBe(false);
    time.set(20_000);
    expect(b.tryWithdraw()).toBe(false);
  });
});
