// Scenario summaries built from raw measurements: per-round peer ratios, skipped variants, rotation windows.
import { expect, test } from 'vitest';
import { renderBar } from '../../../bench/harness/progress.js';
import { pickupTimes } from '../../../bench/harness/rotation-probe.js';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { pairHeadlines, pairSummaryRows } from '../../../bench/scenarios/pair-summary.js';
import { accessLogHeadlines } from '../../../bench/scenarios/mesh.js';
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

test('pair summary shows RSS idle → under load when the idle sample exists', () => {
  const rows = pairSummaryRows(
    [
      { ...m('tessera pair', 1, 60, 64, 10_000, 2.5), rssIdleMbClient: 62, rssIdleMbServer: 63, rssMbClient: 80, rssMbServer: 82 },
      { ...m('nginx pair', 1, 40, 40, 16_000, 2.0), rssMbClient: 19, rssMbServer: 20 },
    ],
    { variants: ['tessera pair', 'nginx pair'], peerBaselines: ['nginx pair'] },
  );
  expect(rows[0]!['RSS MB idle→load client / server']).toBe('62→80 / 63→82');
  expect(rows[1]!['RSS MB idle→load client / server']).toBe('19 / 20');
});

test('access-log cost: per-round differences between the two Tessera pairs, nothing when one is missing', () => {
  const rounds = [
    m('tessera pair', 1, 60, 64, 10_000, 2.5),
    m('tessera pair + access log', 1, 66, 72, 9_000, 2.6),
    m('tessera pair', 2, 70, 70, 8_000, 3),
    m('tessera pair + access log', 2, 80, 76, 7_000, 3.1),
  ];
  const [h] = accessLogHeadlines(rounds);
  expect(h).toContain('+8 (6–10) µs/req client side');
  expect(h).toContain('+7 (6–8) µs/req server side');
  expect(accessLogHeadlines(rounds.filter((r) => r['variant'] === 'tessera pair'))).toEqual([]);
});
