// Idle CPU of the mesh pairs (bench/scenarios/pair-idle-cpu.ts): carried into every measured row of its pair,
// shown as a summary column client / server, one headline over the pairs and a note with the window, all of which
// the Markdown report renders.
import { expect, test } from 'vitest';
import type { IdleCpuResult } from '../../../bench/harness/idle-cpu.js';
import type { Measurement, ScenarioResult } from '../../../bench/harness/scenario.js';
import { renderReport } from '../../../bench/report/render-markdown.js';
import { DIRECT, NGINX, TESSERA } from '../../../bench/scenarios/mesh.js';
import { IDLE_CPU_COLUMN, idleCpuCells, idleCpuHeadline, idleCpuNote, withIdleCpu } from '../../../bench/scenarios/pair-idle-cpu.js';
import { pairSummaryRows } from '../../../bench/scenarios/pair-summary.js';
import { pairMeasurement } from '../../helpers/pair-measurement.js';

const m = (variant: string, round: number, extra: Record<string, number | string> = {}): Measurement => pairMeasurement(variant, round, 50, 40, extra);

const idle: IdleCpuResult = {
  settleMs: 2_000,
  windowMs: 10_000,
  readings: new Map([
    ['tessera pair\u0000client', { msPerSec: 9.1, source: 'schedstat', threadsLost: 0 }],
    ['tessera pair\u0000server', { msPerSec: 8.7, source: 'schedstat', threadsLost: 0 }],
  ]),
  machineBusy: 0.031,
  machineSteal: 0,
};
const fields = new Map([
  [TESSERA, { cpuIdleMsPerSecClient: 9.1, cpuIdleMsPerSecServer: 8.7 }],
  [NGINX, { cpuIdleMsPerSecClient: 0.004, cpuIdleMsPerSecServer: null }],
]);
const rounds = [m(DIRECT, 1), m(TESSERA, 1), m(NGINX, 1), m(DIRECT, 2), m(TESSERA, 2), m(NGINX, 2), { variant: 'ghost pair', round: 1, skipped: 'no binary' }];
const ms = withIdleCpu(rounds, new Map([...fields, ['ghost pair', { cpuIdleMsPerSecClient: 1, cpuIdleMsPerSecServer: 1 }]]));
const variants = [DIRECT, TESSERA, NGINX];

test('every measured row of a pair carries its idle figures; direct and skipped rows do not', () => {
  expect(ms.filter((r) => r['variant'] === TESSERA).map((r) => [r['cpuIdleMsPerSecClient'], r['cpuIdleMsPerSecServer']])).toEqual([
    [9.1, 8.7],
    [9.1, 8.7],
  ]);
  expect(ms.find((r) => r['variant'] === DIRECT)).not.toHaveProperty('cpuIdleMsPerSecClient');
  expect(ms.find((r) => r['variant'] === 'ghost pair')).not.toHaveProperty('cpuIdleMsPerSecClient');
});

test('the summary column: client / server, "–" for a side or row without a figure, absent when nothing was measured idle', () => {
  expect(idleCpuCells(ms, TESSERA)).toEqual({ [IDLE_CPU_COLUMN]: '9.10 / 8.70' });
  expect(idleCpuCells(ms, NGINX)).toEqual({ [IDLE_CPU_COLUMN]: '0.0040 / –' });
  expect(idleCpuCells(ms, DIRECT)).toEqual({ [IDLE_CPU_COLUMN]: '–' });
  expect(idleCpuCells(rounds, TESSERA)).toEqual({});
  expect(pairSummaryRows(rounds, { variants, peerBaselines: [NGINX] })[1]).not.toHaveProperty(IDLE_CPU_COLUMN);
});

test('the headline lists every pair measured idle with the window; the note says idle after load, schedstat, the window', () => {
  const [h] = idleCpuHeadline(ms, variants, 10_000);
  expect(h).toContain('one 10 s window without load, pooled connections open');
  expect(h).toContain('tessera pair 9.10 / 8.70; nginx pair 0.0040 / –.');
  expect(h).not.toContain(DIRECT);
  expect(idleCpuHeadline(rounds, variants, 10_000)).toEqual([]);
  const note = idleCpuNote(idle);
  expect(note).toContain('idle after load: pooled connections open');
  expect(note).toContain('no load for 2 s, then ONE 10 s window');
  expect(note).toContain('/proc/<pid>/task/<tid>/schedstat');
  expect(note).toContain('Machine busy 3.1 %');
  expect(note).not.toContain('ticks (10 ms resolution)');
  const degraded = idleCpuNote({ ...idle, readings: new Map([['x', { msPerSec: 1, source: 'ticks', threadsLost: 2 }]]) });
  expect(degraded).toContain('its figure comes from utime+stime ticks');
  expect(degraded).toContain('2 thread(s) exited during the window');
});

test('the rendered report shows the idle CPU column, headline and note in the mesh section', () => {
  const summaryOpts = { variants, peerBaselines: [NGINX], direct: DIRECT };
  const result: ScenarioResult = {
    scenario: 'mesh',
    startedAt: '2026-11-28T13:52:00.000Z',
    machine: { cpuModel: 'Test CPU', cpuCount: 2 },
    options: { rounds: 2, warmupMs: 300, durationMs: 1500, connections: 32, idleWindowMs: 10_000 },
    measurements: ms,
    summary: pairSummaryRows(ms, summaryOpts),
    headlines: idleCpuHeadline(ms, variants, 10_000),
    notes: [idleCpuNote(idle)],
  };
  const { markdown } = renderReport([result], { chartsDir: 'charts', generatedAt: '2026-11-28T14:00:00.000Z', commands: [] });
  const header = markdown.split('\n').find((l) => l.startsWith('| variant | req/s'))!;
  expect(header).toContain(`| ${IDLE_CPU_COLUMN} |`);
  // The column sits beside the idle RSS/PSS columns.
  expect(header.indexOf(IDLE_CPU_COLUMN)).toBeGreaterThan(header.indexOf('PSS MB idle→load client / server'));
  expect(markdown).toMatch(/\| tessera pair \|.*\| 9\.10 \/ 8\.70 \|/);
  expect(markdown).toContain('- Idle CPU after the rounds, ms of CPU per second client / server side (one 10 s window');
  expect(markdown).toContain('idle after load: pooled connections open');
  expect(markdown).toContain('idleWindowMs 10000');
  // The raw measurements carry the fields.
  expect(markdown).toContain('cpuIdleMsPerSecClient');
});
