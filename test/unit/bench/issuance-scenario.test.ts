// The issuance scenario's pure parts: the variant list, one window → one measurement row, summary rows (medians
// over rounds, totals of issued/errors) and headlines (rate, latency, CPU per SVID, concurrency scaling, errors).
import { expect, test } from 'vitest';
import type { Measurement } from '../../../bench/harness/scenario.js';
import {
  ISSUANCE_VARIANTS,
  type IssuanceWindow,
  issuanceHeadlines,
  issuanceMeasurement,
  issuanceSummary,
  issuanceVariantName,
} from '../../../bench/scenarios/issuance-summary.js';

const window = (over: Partial<IssuanceWindow> = {}): IssuanceWindow => ({
  issued: 3000,
  errors: 0,
  wallMs: 3000,
  serverCpuMs: 4500,
  clientCpuMs: 1500,
  p50Ms: 1.234,
  p99Ms: 9.876,
  maxMs: 20,
  ranOutOfTokens: false,
  ...over,
});

const row = (mode: 'join token' | 'renewal (mTLS)', concurrency: number, round: number, w: Partial<IssuanceWindow>): Measurement => ({
  variant: issuanceVariantName(mode, concurrency),
  round,
  ...issuanceMeasurement(window(w)),
});

test('join tokens and renewal, each at concurrency 1 and 8', () => {
  expect(ISSUANCE_VARIANTS.map((v) => [v.mode, v.concurrency])).toEqual([
    ['join token', 1],
    ['join token', 8],
    ['renewal (mTLS)', 1],
    ['renewal (mTLS)', 8],
  ]);
  expect(new Set(ISSUANCE_VARIANTS.map((v) => v.name)).size).toBe(4);
});

test('a window becomes rates and per-SVID costs; an empty window has no rate or cost rather than 0 or Infinity', () => {
  const m = issuanceMeasurement(window({ issued: 1500, wallMs: 2000, serverCpuMs: 3000, ranOutOfTokens: true }));
  expect(m).toMatchObject({ svidsPerSec: 750, serverCpuMsPerSvid: 2, clientCpuMsPerSvid: 1, p50Ms: 1.23, p99Ms: 9.88, issued: 1500, windowMs: 2000, ranOutOfTokens: 1 });
  const empty = issuanceMeasurement(window({ issued: 0, errors: 12, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN }));
  expect(empty).toMatchObject({ svidsPerSec: 0, serverCpuMsPerSvid: null, clientCpuMsPerSvid: null, p50Ms: null, p99Ms: null, errors: 12 });
});

const ms: Measurement[] = [
  row('join token', 1, 1, { issued: 900, serverCpuMs: 1800, p99Ms: 10 }),
  row('join token', 1, 2, { issued: 600, serverCpuMs: 1500, p99Ms: 30 }),
  row('join token', 8, 1, { issued: 1800, serverCpuMs: 2700, p99Ms: 40 }),
  row('join token', 8, 2, { issued: 1800, serverCpuMs: 2700, p99Ms: 50, errors: 2 }),
  row('renewal (mTLS)', 1, 1, { issued: 600, serverCpuMs: 1200 }),
  row('renewal (mTLS)', 1, 2, { issued: 600, serverCpuMs: 1200 }),
];

test('summary rows: medians with the min–max over rounds, issued and errors totalled, a variant never measured shows dashes', () => {
  const rows = issuanceSummary(ms);
  expect(rows.map((r) => r['variant'])).toEqual(ISSUANCE_VARIANTS.map((v) => v.name));
  const j1 = rows[0]!;
  expect(j1['SVIDs/s']).toBe('250 (200–300)');
  expect(j1['p99 ms']).toBe('20 (10–30)');
  expect(j1['server CPU ms/SVID']).toBe('2.25 (2–2.50)');
  expect(j1['issued']).toBe(1500);
  expect(rows[1]!['errors']).toBe(2);
  expect(rows[3]!['SVIDs/s']).toBe('–');
  expect(rows[3]!['issued']).toBe(0);
});

test('headlines: rate and latency per concurrency, CPU per SVID and its per-core ceiling, scaling per round, errors called out', () => {
  const h = issuanceHeadlines(ms);
  const join = h.find((l) => l.startsWith('join token:'))!;
  expect(join).toContain('250 SVIDs/s at concurrency 1');
  expect(join).toContain('600 SVIDs/s at concurrency 8 (p50 1.23 ms, p99 45 ms)');
  // CPU per SVID pooled over both concurrencies: 2, 2.5, 1.5, 1.5 → median 1.75 ms → ~571 per core.
  expect(join).toContain('server CPU 1.75 ms per SVID, i.e. about 571 SVIDs/s per server core');
  expect(join).toContain('concurrency 8 ÷ 1: 2.50× (2.00–3.00) SVIDs/s');
  const renewal = h.find((l) => l.startsWith('renewal (mTLS):'))!;
  expect(renewal).toContain('200 SVIDs/s at concurrency 1');
  expect(renewal).not.toContain('concurrency 8');
  expect(h.at(-1)).toContain('**2 SignSvid calls failed**');
  expect(issuanceHeadlines(ms.filter((m) => m['errors'] === 0)).some((l) => l.includes('failed'))).toBe(false);
});
