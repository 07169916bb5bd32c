// Outlier detection: ejection after N consecutive failures (success resets, cancelled is ignored), a return delay
// that grows with each ejection, identity_mismatch at once, the max-percent cap, and lazy return without timers.
import { describe, expect, test } from 'vitest';
import type { OutlierSettings } from '../../../../proxy/src/config/routing-config.js';
import type { AttemptOutcome } from '../../../../proxy/src/routing/lease.js';
import { OutlierDetector, type OutlierTrack } from '../../../../proxy/src/routing/outlier-detector.js';

const SETTINGS: OutlierSettings = { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50 };

function fail(d: OutlierDetector, t: OutlierTrack, n: number, now: number, outcome: AttemptOutcome = 'status_5xx'): (string | undefined)[] {
  return Array.from({ length: n }, () => d.record(t, outcome, now));
}

describe('OutlierDetector', () => {
  test.each(['status_5xx', 'reset', 'connect_failed'] as const)('%s: ejected at the Nth consecutive failure, not before', (outcome) => {
    const d = new OutlierDetector(SETTINGS);
    const t = d.track();
    d.track();
    expect(fail(d, t, 4, 0, outcome)).toEqual([undefined, undefined, undefined, undefined]);
    expect(t.ejected).toBe(false);
    expect(d.record(t, outcome, 0)).toBe('consecutive_failures');
    expect(t.ejected).toBe(true);
    expect(t.returnsAtMs).toBe(30_000);
  });

  test('a success resets the count; cancelled neither counts nor resets', () => {
    const d = new OutlierDetector(SETTINGS);
    const t = d.track();
    d.track();
    fail(d, t, 4, 0);
    d.record(t, 'success', 0);
    fail(d, t, 4, 0);
    expect(t.ejected).toBe(false);
    for (let i = 0; i < 20; i++) d.record(t, 'cancelled', 0);
    expect(t.ejected).toBe(false);
    expect(d.record(t, 'reset', 0)).toBe('consecutive_failures');
  });

  test('identity_mismatch ejects at once', () => {
    const d = new OutlierDetector(SETTINGS);
    const t = d.track();
    d.track();
    expect(d.record(t, 'identity_mismatch', 5)).toBe('identity_mismatch');
    expect(t.returnsAtMs).toBe(30_005);
  });

  test('each ejection lasts one base longer; the return is noticed lazily, with a fresh failure count', () => {
    const d = new OutlierDetector(SETTINGS);
    const t = d.track();
    d.track();
    let now = 0;
    for (const expected of [30_000, 60_000, 90_000]) {
      fail(d, t, 5, now);
      expect(t.returnsAtMs! - now).toBe(expected);
      expect(d.releaseDue(now + expected - 1)).toBe(false);
      expect(t.ejected).toBe(true);
      now += expected;
      expect(d.releaseDue(now)).toBe(true);
      expect(t.ejected).toBe(false);
      expect(d.record(t, 'status_5xx', now)).toBeUndefined(); // one failure after return is not five
    }
    expect(t.ejections).toBe(3);
  });

  test('the ejection time stops growing at 10 bases', () => {
    const d = new OutlierDetector({ ...SETTINGS, consecutiveFailures: 1 });
    const t = d.track();
    d.track();
    let now = 0;
    for (let i = 0; i < 15; i++) {
      d.record(t, 'reset', now);
      now = t.returnsAtMs!;
      d.releaseDue(now);
    }
    d.record(t, 'reset', now);
    expect(t.returnsAtMs! - now).toBe(300_000);
  });

  test('failures while ejected (attempts that were in flight) do not extend the ejection', () => {
    const d = new OutlierDetector(SETTINGS);
    const t = d.track();
    d.track();
    fail(d, t, 5, 0);
    fail(d, t, 10, 1000);
    expect(t.returnsAtMs).toBe(30_000);
    expect(t.ejections).toBe(1);
  });

  test('never more than maxEjectionPercent ejected at once; the next one is ejected once a slot frees', () => {
    const d = new OutlierDetector(SETTINGS); // 50 % of 4 = 2
    const ts = [d.track(), d.track(), d.track(), d.track()];
    expect(d.record(ts[0]!, 'identity_mismatch', 0)).toBe('identity_mismatch');
    fail(d, ts[1]!, 5, 0);
    expect(fail(d, ts[2]!, 8, 0)).toEqual(Array(8).fill(undefined));
    expect(d.record(ts[3]!, 'identity_mismatch', 0)).toBeUndefined();
    expect(d.ejectedCount).toBe(2);
    expect(ts[2]!.ejected).toBe(false);
    // The first two return; the third, still failing, is ejected at its next failure.
    expect(d.record(ts[2]!, 'status_5xx', 30_000)).toBe('consecutive_failures');
    expect(d.ejectedCount).toBe(1);
  });

  test('at least one endpoint may be ejected, even when the percentage rounds to zero', () => {
    const d = new OutlierDetector({ ...SETTINGS, maxEjectionPercent: 10 });
    const a = d.track();
    const b = d.track();
    expect(d.record(a, 'identity_mismatch', 0)).toBe('identity_mismatch');
    expect(d.record(b, 'identity_mismatch', 0)).toBeUndefined();
    const solo = new OutlierDetector({ ...SETTINGS, maxEjectionPercent: 0 });
    const only = solo.track();
    expect(solo.record(only, 'identity_mismatch', 0)).toBe('identity_mismatch');
  });

  test('an untracked endpoint frees its slot and its outcomes are ignored', () => {
    const d = new OutlierDetector(SETTINGS);
    const a = d.track();
    const b = d.track();
    d.record(a, 'identity_mismatch', 0);
    d.untrack(a);
    expect(d.ejectedCount).toBe(0);
    expect(d.record(b, 'identity_mismatch', 0)).toBe('identity_mismatch'); // 50 % of 1 → 1 slot, now free
    expect(d.record(a, 'identity_mismatch', 0)).toBeUndefined();
  });
});
