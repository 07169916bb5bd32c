// The premature-reset budget of an HTTP/2 server session (h2-reset-budget.ts), pure: which closed streams count
// (no response head, within PREMATURE_MS of their start), the allowance (a full window of streams, at least
// MIN_ALLOWANCE), the ratio (more than half of the closed streams) for a session that is cut, none for one that is
// drained (an inbound peer's, shared by its clients).
import { describe, expect, test } from 'vitest';
import { MIN_ALLOWANCE, PREMATURE_MS, ResetBudget } from '../../../../proxy/src/listeners/h2-reset-budget.js';

/** Closes `n` streams alike; the index of the first close that put the session past its budget, or -1. */
function close(b: ResetBudget, n: number, answered: boolean, lifetimeMs = 5): number {
  for (let i = 0; i < n; i++) if (b.closed(answered, lifetimeMs)) return i;
  return -1;
}

describe('ResetBudget', () => {
  test('rapid reset: past at the first premature reset beyond the allowance (Envoy waits for 250)', () => {
    const b = new ResetBudget(100, 'cut');
    expect(MIN_ALLOWANCE).toBe(100);
    expect(close(b, 100, false)).toBe(-1);
    expect(b.closed(false, 0)).toBe(true);
    expect(b.premature).toBe(101);
  });

  test('a full window cancelled at once never trips, however large the window is configured', () => {
    expect(close(new ResetBudget(1_000, 'cut'), 1_000, false)).toBe(-1);
    expect(close(new ResetBudget(1_000, 'cut'), 1_001, false)).toBe(1_000);
    expect(close(new ResetBudget(8, 'cut'), 100, false)).toBe(-1); // at least MIN_ALLOWANCE
  });

  test('answered streams count only as closed streams: half premature or less never trips, past half does', () => {
    const half = new ResetBudget(100, 'cut');
    for (let i = 0; i < 10_000; i++) {
      expect(half.closed(true, 5)).toBe(false);
      expect(half.closed(false, 5)).toBe(false);
    }
    const quarter = new ResetBudget(100, 'cut');
    for (let i = 0; i < 10_000; i++) expect(quarter.closed(i % 4 !== 0, 5)).toBe(false);
    // 150 answered then premature resets: past once the premature ones are over 100 and over half (151 of 301).
    const mostly = new ResetBudget(100, 'cut');
    expect(close(mostly, 150, true)).toBe(-1);
    expect(close(mostly, 1_000, false)).toBe(150);
  });

  test('a reset PREMATURE_MS or more after the stream began is an ordinary cancellation', () => {
    const b = new ResetBudget(100, 'cut');
    expect(close(b, 10_000, false, PREMATURE_MS)).toBe(-1);
    expect(b.premature).toBe(0);
    expect(close(b, 100, false, PREMATURE_MS - 1)).toBe(-1);
    expect(b.premature).toBe(100);
  });

  test('drain (an inbound peer\'s session): past the allowance whatever the ratio, far below nghttp2\'s 1,000', () => {
    const b = new ResetBudget(100, 'drain');
    expect(close(b, 10_000, true)).toBe(-1);
    expect(close(b, 100, false)).toBe(-1);
    expect(b.closed(false, 5)).toBe(true); // 101 premature among 10,101 closed streams
    expect(close(new ResetBudget(100, 'drain'), 10_000, false, PREMATURE_MS)).toBe(-1);
  });
});
