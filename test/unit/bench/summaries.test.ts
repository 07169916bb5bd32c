// Scenario summaries built from raw measurements: per-round peer ratios, skipped variants, rotation windows.
import { expect, test } from 'vitest';
import { renderBar } from '../../../bench/harness/progress.js';
import { pickupTimes } from '../../../bench/harness/rotation-probe.js';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { pairHeadlines, pairSummaryRows } from '../../../bench/scenarios/pair-summary.js';
import { rotationOffsets } from '../../../bench/scenarios/rotation.js';

const m = (variant: string, round: number, client: number, server: number, rps: number, p50: number): Measurement => ({
  variant,
  round,
  reqPerSec: rps,
  p50Ms: p50,
  p99Ms: p50 * 3,
  p999Ms: p50 * 6,
  cpuUsPerReqClient: client,
  cpuUsPerReqServer: server,
  cpuUsPerReqProxies: client + server,
  cpuUsPerReqApp: 8,
  errors: 0,
  non2xx: 0,
});

const ms: Measurement[] = [
  m('direct app', 1, Number.NaN, Number.NaN, 80_000, 0.5),
  m('tessera pair', 1, 60, 64, 10_000, 2.5),
  m('nginx pair', 1, 40, 40, 16_000, 2.0),
  m('haproxy pair', 1, 36, 36, 17_000, 1.7),
  m('direct app', 2, Number.NaN, Number.NaN, 40_000, 1),
  m('tessera pair', 2, 90, 90, 5_000, 5),
  m('nginx pair', 2, 50, 50, 8_000, 4.0),
  m('haproxy pair', 2, 50, 50, 9_000, 3.9),
  { variant: 'ghost pair', round: 1, skipped: 'proxy not available (no binary)' },
];
const opts = { variants: ['direct app', 'tessera pair', 'nginx pair', 'haproxy pair', 'ghost pair'], peerBaselines: ['nginx pair', 'haproxy pair'], direct: 'direct app' };

test('pair summary: CPU and req/s ratios are per-round medians, skipped variants say so', () => {
  const rows = pairSummaryRows(ms, opts);
  const t = rows.find((r) => r['variant'] === 'tessera pair')!;
  // per round: (124/80, 180/100) = (1.55, 1.80) → median 1.675
  expect(t['CPU ÷ nginx']).toBe('1.68× (1.55–1.80)');
  expect(t['req/s ÷ nginx']).toBe('0.63×');
  expect(t['added p50 ms']).toBe('3 (2–4)');
  expect(t['failed requests']).toBe(0);
  expect(rows.find((r) => r['variant'] === 'nginx pair')!['CPU ÷ nginx']).toBe('1');
  expect(rows.find((r) => r['variant'] === 'ghost pair')).toEqual({ variant: 'ghost pair', 'req/s': 'skipped (see notes)' });
  const h = pairHeadlines(ms, 'tessera pair', opts);
  expect(h[0]).toContain('1.68× (1.55–1.80)');
  expect(pairHeadlines(ms, 'ghost pair', opts)).toEqual(['ghost pair skipped: proxy not available (no binary).']);
});

test('rotation schedule: first swap after 1 s, then every 2 s while 0.5 s of window remains', () => {
  expect(rotationOffsets(6_000)).toEqual([1_000, 3_000, 5_000]);
  expect(rotationOffsets(1_200)).toEqual([]);
});

test('pickup time: from a swap to the first probe that saw the new serial', () => {
  const seen = [
    { atMs: 100, serialHex: 'a' },
    { atMs: 1_050, serialHex: 'a' },
    { atMs: 1_250, serialHex: 'b' },
    { atMs: 3_400, serialHex: 'b' },
  ];
  expect(pickupTimes([{ atMs: 1_000, serialHex: 'b' }, { atMs: 3_000, serialHex: 'c' }], seen)).toEqual([250, null]);
});

test('progress bar: width, percentage and time left', () => {
  const bar = renderBar(0.5, 'round 2/5 nginx pair', 30_000);
  expect(bar).toBe('[##############..............]  50% round 2/5 nginx pair  0:30 left');
  expect(renderBar(0.5, 'x'.repeat(200), 0, 80).length).toBe(79);
});
