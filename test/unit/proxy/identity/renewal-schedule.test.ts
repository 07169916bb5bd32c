// Renewal schedule: the 50 % ±10 % renewal point, wall-clock decisions, backoff capped at expiry, readiness.
import { describe, expect, test } from 'vitest';
import {
  type RenewalState,
  identityReadiness,
  inLastTenth,
  MIN_CHECK_MS,
  nextCheckInMs,
  renewAtMs,
  renewalDecision,
  retryAtMs,
} from '../../../../proxy/src/identity/renewal-schedule.js';

const NB = 1_000_000;
const NA = NB + 20_000; // a 20 s SVID
const svid = { notBeforeMs: NB, notAfterMs: NA, renewAtMs: NB + 10_000 };

describe('renewAtMs', () => {
  test('is the middle of the lifetime without jitter', () => {
    expect(renewAtMs(NB, NA, () => 0.5)).toBe(NB + 10_000);
  });
  test('jitter stays within ±10 % of the midpoint', () => {
    expect(renewAtMs(NB, NA, () => 0)).toBe(NB + 9_000);
    expect(renewAtMs(NB, NA, () => 1)).toBe(NB + 11_000);
    for (let i = 0; i < 200; i++) {
      const at = renewAtMs(NB, NA);
      expect(at).toBeGreaterThanOrEqual(NB + 9_000);
      expect(at).toBeLessThanOrEqual(NB + 11_000);
    }
  });
  test('a degenerate validity renews at once', () => {
    expect(renewAtMs(NB, NB - 5, () => 0.5)).toBe(NB);
  });
});

describe('inLastTenth', () => {
  test('switches at 90 % of the lifetime', () => {
    expect(inLastTenth(NB + 17_999, NB, NA)).toBe(false);
    expect(inLastTenth(NB + 18_000, NB, NA)).toBe(true);
    expect(inLastTenth(NA + 1, NB, NA)).toBe(true);
  });
});

describe('renewalDecision', () => {
  const base: RenewalState = { svid, failures: 0, canReattest: true };
  test('attests when there is no SVID yet, unless backing off', () => {
    expect(renewalDecision(NB, { failures: 0, canReattest: false })).toEqual({ kind: 'attest' });
    expect(renewalDecision(NB, { failures: 1, retryAtMs: NB + 500, canReattest: false })).toEqual({ kind: 'wait', untilMs: NB + 500 });
    expect(renewalDecision(NB + 500, { failures: 1, retryAtMs: NB + 500, canReattest: false })).toEqual({ kind: 'attest' });
  });
  test('waits until the renewal point, then renews', () => {
    expect(renewalDecision(NB + 9_999, base)).toEqual({ kind: 'wait', untilMs: NB + 10_000 });
    expect(renewalDecision(NB + 10_000, base)).toEqual({ kind: 'renew' });
  });
  test('a clock that jumped far past the renewal point renews at the next ask (no timer needed)', () => {
    expect(renewalDecision(NB + 19_000, base)).toEqual({ kind: 'renew' });
  });
  test('a clock that jumped backwards just waits', () => {
    expect(renewalDecision(NB - 60_000, base)).toEqual({ kind: 'wait', untilMs: NB + 10_000 });
  });
  test('backs off after a failure, within the renewal window', () => {
    const s = { ...base, failures: 2, retryAtMs: NB + 12_000 };
    expect(renewalDecision(NB + 11_000, s)).toEqual({ kind: 'wait', untilMs: NB + 12_000 });
    expect(renewalDecision(NB + 12_000, s)).toEqual({ kind: 'renew' });
  });
  test('after expiry: re-attests when evidence can be had, else reports expired', () => {
    expect(renewalDecision(NA, base)).toEqual({ kind: 'reattest' });
    expect(renewalDecision(NA, { ...base, failures: 3, retryAtMs: NA + 1_000 })).toEqual({ kind: 'wait', untilMs: NA + 1_000 });
    const d = renewalDecision(NA + 5, { ...base, canReattest: false });
    expect(d.kind).toBe('expired');
    expect(d.kind === 'expired' && d.reason).toMatch(/single-use/);
  });
});

describe('retryAtMs', () => {
  const mid = () => 0.5;
  test('grows exponentially with failures', () => {
    expect(retryAtMs(NB, 1, undefined, undefined, mid)).toBe(NB + 500);
    expect(retryAtMs(NB, 2, undefined, undefined, mid)).toBe(NB + 1_000);
    expect(retryAtMs(NB, 4, undefined, undefined, mid)).toBe(NB + 4_000);
    expect(retryAtMs(NB, 40, undefined, undefined, mid)).toBe(NB + 30_000);
  });
  test('waits at most a quarter of the remaining life, and never past the expiry of a live SVID', () => {
    expect(retryAtMs(NB, 10, NA, undefined, mid)).toBe(NB + 5_000);
    expect(retryAtMs(NA - 1_000, 10, NA, undefined, mid)).toBe(NA - 500);
    expect(retryAtMs(NA - 100, 10, NA, undefined, mid)).toBe(NA);
    expect(retryAtMs(NA + 100, 1, NA, undefined, mid)).toBe(NA + 600);
  });
});

describe('nextCheckInMs', () => {
  test('at the instant waited for, at least MIN_CHECK_MS and at most the longest the wall clock goes unread', () => {
    expect(nextCheckInMs(1_000, 4_500, 10_000)).toBe(3_500);
    expect(nextCheckInMs(1_000, 3_600_000, 10_000)).toBe(10_000);
    expect(nextCheckInMs(1_000, 1_200, 10_000)).toBe(MIN_CHECK_MS);
    expect(nextCheckInMs(5_000, 1_000, 10_000)).toBe(MIN_CHECK_MS);
    expect(nextCheckInMs(1_000, undefined, 10_000)).toBe(10_000);
  });
});

describe('identityReadiness', () => {
  const base: RenewalState = { svid, failures: 0, canReattest: true };
  test('ready through the lifetime until the last 10 %', () => {
    expect(identityReadiness(NB + 17_000, { ...base, failures: 4 }, 'UNAVAILABLE')).toEqual({ ready: true });
  });
  test('not ready in the last 10 % with the reason', () => {
    const r = identityReadiness(NB + 18_500, { ...base, failures: 4 }, 'UNAVAILABLE: connect ECONNREFUSED');
    expect(r).toEqual({ ready: false, reason: 'svid in last 10% of lifetime and renewal failing: UNAVAILABLE: connect ECONNREFUSED' });
  });
  test('not ready without an SVID or after expiry', () => {
    expect(identityReadiness(NB, { failures: 0, canReattest: true }).ready).toBe(false);
    expect(identityReadiness(NA, base)).toEqual({ ready: false, reason: 'svid expired' });
  });
});
