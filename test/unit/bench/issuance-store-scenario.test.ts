// The issuance-store scenario's pure parts: the variant list (3 deployments × 2 modes), one window → one row with
// PostgreSQL's CPU apart and in the total, summary rows (SQLite has no PostgreSQL column) and headlines (per-round
// ratios PostgreSQL ×1 ÷ SQLite and ×3 ÷ ×1, errors called out), and the reaped-children CPU PostgreSQL's figure uses.
import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { reapedChildrenTicks } from '../../../bench/harness/proc-stat.js';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { STORE_DEPLOYMENTS, STORE_VARIANTS, type StoreWindow, storeHeadlines, storeMeasurement, storeSummary, storeVariantName } from '../../../bench/scenarios/issuance-store-summary.js';

const [SQLITE, PG1, PG3] = STORE_DEPLOYMENTS as [(typeof STORE_DEPLOYMENTS)[number], (typeof STORE_DEPLOYMENTS)[number], (typeof STORE_DEPLOYMENTS)[number]];

const window = (over: Partial<StoreWindow> = {}): StoreWindow => ({
  issued: 3000,
  errors: 0,
  wallMs: 3000,
  serverCpuMs: 3000,
  postgresCpuMs: null,
  clientCpuMs: 1500,
  p50Ms: 2,
  p99Ms: 10,
  maxMs: 20,
  ranOutOfTokens: false,
  replicas: 1,
  lanes: 12,
  machineBusy: 0.987,
  ...over,
});

const row = (d: typeof SQLITE, mode: 'renewal (mTLS)' | 'join token', round: number, w: Partial<StoreWindow>): Measurement => ({
  variant: storeVariantName(d, mode),
  round,
  ...storeMeasurement(window({ replicas: d.replicas, ...w })),
});

test('renewal and join tokens, each on SQLite ×1, PostgreSQL ×1 and PostgreSQL ×3', () => {
  expect(STORE_VARIANTS.map((v) => v.name)).toEqual([
    'SQLite ×1: renewal (mTLS)',
    'PostgreSQL ×1: renewal (mTLS)',
    'PostgreSQL ×3: renewal (mTLS)',
    'SQLite ×1: join token',
    'PostgreSQL ×1: join token',
    'PostgreSQL ×3: join token',
  ]);
  expect(STORE_DEPLOYMENTS.map((d) => [d.store, d.replicas])).toEqual([
    ['sqlite', 1],
    ['postgres', 1],
    ['postgres', 3],
  ]);
});

test('a window: PostgreSQL CPU per SVID apart and added to the total; without PostgreSQL the total is the control plane', () => {
  const pg = storeMeasurement(window({ issued: 1000, serverCpuMs: 2000, postgresCpuMs: 500, replicas: 3 }));
  expect(pg).toMatchObject({ replicas: 3, lanes: 12, svidsPerSec: 333.3, serverCpuMsPerSvid: 2, postgresCpuMsPerSvid: 0.5, totalCpuMsPerSvid: 2.5, machineBusy: 0.99 });
  const sqlite = storeMeasurement(window({ issued: 1000, serverCpuMs: 2000 }));
  expect(sqlite).toMatchObject({ postgresCpuMsPerSvid: null, totalCpuMsPerSvid: 2 });
  expect(storeMeasurement(window({ issued: 0, errors: 5, postgresCpuMs: 10, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN }))).toMatchObject({ svidsPerSec: 0, postgresCpuMsPerSvid: null, totalCpuMsPerSvid: null, errors: 5 });
});

const ms: Measurement[] = [
  row(SQLITE, 'renewal (mTLS)', 1, { issued: 1500, serverCpuMs: 1500 }),
  row(SQLITE, 'renewal (mTLS)', 2, { issued: 1200, serverCpuMs: 1200 }),
  row(PG1, 'renewal (mTLS)', 1, { issued: 750, serverCpuMs: 1500, postgresCpuMs: 750 }),
  row(PG1, 'renewal (mTLS)', 2, { issued: 900, serverCpuMs: 1800, postgresCpuMs: 900 }),
  row(PG3, 'renewal (mTLS)', 1, { issued: 1500, serverCpuMs: 4500, postgresCpuMs: 1500, errors: 3 }),
  row(PG3, 'renewal (mTLS)', 2, { issued: 900, serverCpuMs: 2700, postgresCpuMs: 900 }),
];

test('summary rows: medians (min–max) per variant; SQLite shows no PostgreSQL CPU; unmeasured variants show dashes', () => {
  const rows = storeSummary(ms);
  expect(rows.map((r) => r['variant'])).toEqual(STORE_VARIANTS.map((v) => v.name));
  expect(rows[0]).toMatchObject({ 'SVIDs/s': '450 (400–500)', 'control plane CPU ms/SVID': '1', 'PostgreSQL CPU ms/SVID': '–', 'total CPU ms/SVID': '1', issued: 2700 });
  expect(rows[1]).toMatchObject({ 'SVIDs/s': '275 (250–300)', 'control plane CPU ms/SVID': '2', 'PostgreSQL CPU ms/SVID': '1', 'total CPU ms/SVID': '3' });
  expect(rows[2]).toMatchObject({ 'total CPU ms/SVID': '4', errors: 3 });
  expect(rows[3]).toMatchObject({ 'SVIDs/s': '–', issued: 0 });
});

test('headlines: each deployment with rate, latency and CPU split; per-round ratios; errors called out', () => {
  const h = storeHeadlines(ms);
  const renewal = h.find((l) => l.startsWith('renewal (mTLS):'))!;
  expect(renewal).toContain('SQLite ×1 450 SVIDs/s (p50 2 ms, p99 10 ms; CPU ms/SVID: control plane 1)');
  expect(renewal).toContain('PostgreSQL ×1 275 SVIDs/s (p50 2 ms, p99 10 ms; CPU ms/SVID: control plane 2 + PostgreSQL 1)');
  // Rounds: 250/500 and 300/400 → 0.5 and 0.75; total CPU 3/1 both rounds.
  expect(renewal).toContain('Per round: PostgreSQL ×1 ÷ SQLite ×1: SVIDs/s 0.63× (0.50–0.75), total CPU per SVID 3.00×; PostgreSQL ×3 ÷ ×1: SVIDs/s 1.50× (1.00–2.00), total CPU per SVID 1.33×.');
  expect(h.some((l) => l.startsWith('join token:'))).toBe(false);
  expect(h.at(-1)).toContain('**3 SignSvid calls failed**');
});

test("PostgreSQL's CPU keeps exited backends: a reaped child's CPU shows in its parent's cutime+cstime", () => {
  const before = reapedChildrenTicks(process.pid);
  // A short, CPU-bound child, waited for (reaped) by this process.
  execFileSync(process.execPath, ['-e', 'let x = 0; for (let i = 0; i < 3e8; i++) x += i; if (x < 0) console.log(x);']);
  expect(reapedChildrenTicks(process.pid) - before).toBeGreaterThanOrEqual(5);
  expect(reapedChildrenTicks(-1)).toBe(0);
});
