// Report rendering: Markdown tables and sections from results, SVG charts, and refusal of malformed results files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { ScenarioResult } from '../../../bench/harness/scenario.js';
import { loadResults, parseResults, resultKey } from '../../../bench/report/load-results.js';
import { markdownTable, renderReport, reportOrder, runTitle } from '../../../bench/report/render-markdown.js';
import { withDefaultConnections } from '../../../bench/harness/run-scenario.js';
import { escapeXml, groupedBarChart, latencyChart, niceScale } from '../../../bench/report/svg-charts.js';
import { rerunCommands } from '../../../bench/report/rerun-commands.js';

const row = (variant: string, round: number, client: number, server: number, rps: number) => ({
  variant,
  round,
  reqPerSec: rps,
  p50Ms: 1,
  p90Ms: 1.5,
  p99Ms: 3,
  p999Ms: 6,
  cpuUsPerReqClient: client,
  cpuUsPerReqServer: server,
  cpuUsPerReqProxies: client + server,
  cpuUsPerReqApp: 8,
});

const mesh: ScenarioResult = {
  scenario: 'mesh',
  startedAt: '2026-11-28T13:52:00.000Z',
  machine: { cpuModel: 'Test CPU', cpuCount: 2, kernel: '6.18', node: 'v24.20.0' },
  options: { rounds: 2, warmupMs: 1000, durationMs: 3000, connections: 32 },
  measurements: [row('nginx pair', 1, 40, 40, 16000), row('nginx pair', 2, 44, 42, 12000), row('tessera pair', 1, 60, 64, 10000), row('tessera pair', 2, 66, 70, 8000)],
  summary: [
    { variant: 'tessera pair', 'CPU ÷ nginx': '1.6×' },
    { variant: 'nginx pair', 'CPU ÷ nginx': '1' },
  ],
  headlines: ['tessera pair vs nginx pair: CPU 1.6×'],
  notes: ['a | note'],
};

describe('rerunCommands', () => {
  test('a primed run is rerun with the same priming', () => {
    const primed = { ...mesh, options: { ...mesh.options, primeMs: 3000, rateRps: 1000 } };
    expect(rerunCommands([primed], 'bench/results', 'bench/RESULTS.md')).toContain(
      'npx tessera bench mesh --rounds 2 --prime 3000ms --warmup 1000ms --duration 3000ms --connections 32 --rate 1000 --json bench/results/mesh-rate1000.json',
    );
  });
});

test('a --load wrk run is keyed, titled and rerun apart from the autocannon run', () => {
  const byWrk: ScenarioResult = { ...mesh, options: { ...mesh.options, load: 'wrk' } };
  expect(resultKey(byWrk)).toBe('mesh-wrk');
  expect(resultKey({ ...byWrk, options: { ...byWrk.options, connections: 128, defaultConnections: 32 } })).toBe('mesh-c128-wrk');
  expect(runTitle(byWrk, [mesh, byWrk])).toBe('load by wrk');
  expect(rerunCommands([byWrk], 'bench/results', 'bench/RESULTS.md')[1]).toBe(
    'npx tessera bench mesh --rounds 2 --warmup 1000ms --duration 3000ms --connections 32 --load wrk --json bench/results/mesh-wrk.json',
  );
});

test('a --baseline-cli run is keyed, titled and rerun apart, so it never replaces the plain run', () => {
  const vsMain: ScenarioResult = { ...mesh, options: { ...mesh.options, load: 'wrk', baselineCli: '/src/main/dist/cli/tessera.js' } };
  expect(resultKey(vsMain)).toBe('mesh-wrk-baseline');
  expect(runTitle(vsMain, [mesh, vsMain])).toBe('load by wrk, with a baseline build');
  expect(rerunCommands([vsMain], 'bench/results', 'bench/RESULTS.md')[1]).toBe(
    'npx tessera bench mesh --rounds 2 --warmup 1000ms --duration 3000ms --connections 32 --load wrk --baseline-cli /src/main/dist/cli/tessera.js --json bench/results/mesh-wrk-baseline.json',
  );
});

describe('renderReport', () => {
  const { markdown, charts } = renderReport([mesh, { ...mesh, scenario: 'authz', measurements: [], summary: [{ variant: 'x', 'decisions/s': 123456 }] }], {
    chartsDir: 'charts',
    generatedAt: '2026-11-28T14:00:00.000Z',
    commands: rerunCommands([mesh], 'bench/results', 'bench/RESULTS.md'),
  });

  test('has the machine, a section per scenario (known order first), headlines, tables, charts and the spread', () => {
    expect(markdown).toMatch(/^# Tessera benchmark results\n/);
    expect(markdown).toContain('| cpuModel | Test CPU |');
    expect(markdown.indexOf('## mesh')).toBeLessThan(markdown.indexOf('## authz'));
    expect(markdown).toContain('- tessera pair vs nginx pair: CPU 1.6×');
    expect(markdown).toContain('| tessera pair | 1.6× |');
    expect(markdown).toContain('| x | 123 456 |');
    expect(markdown).toContain('![mesh: CPU per request per side](charts/mesh-cpu.svg)');
    expect(markdown).toContain('- a | note');
    // nginx pair CPU over rounds: 80 and 86 → median 83, ±3.6 %
    expect(markdown).toContain('| nginx pair | CPU µs/req, both proxies | 83 | 80–86 | ±4 % |');
    expect(markdown).toContain('npx tessera bench mesh --rounds 2 --warmup 1000ms --duration 3000ms --connections 32 --json bench/results/mesh.json');
    expect(charts.map((c) => c.file)).toEqual(['mesh-cpu.svg', 'mesh-throughput.svg', 'mesh-latency.svg']);
  });

  test('charts are standalone SVG documents', () => {
    for (const c of charts) {
      expect(c.svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(c.svg.trimEnd().endsWith('</svg>')).toBe(true);
    }
  });
});

test('markdownTable escapes pipes and takes the union of columns', () => {
  expect(markdownTable([{ a: 'x|y' }, { b: 2 }])).toBe('| a | b |\n|---|---|\n| x\\|y | – |\n| – | 2 |');
});

test('SVG helpers: escaping, nice axis, bars with whiskers and a reference line, latency boxes', () => {
  expect(escapeXml('<a & "b">')).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  expect(niceScale(87)).toEqual({ max: 100, step: 20 });
  expect(niceScale(0.9)).toEqual({ max: 1, step: 0.2 });
  const svg = groupedBarChart({ title: 'T <1>', unit: 'µs', series: ['a', 'b'], groups: [{ label: 'g', values: [{ median: 5, min: 4, max: 6 }, null] }], refLines: [{ value: 3, label: 'floor' }] });
  expect(svg).toContain('T &lt;1&gt;');
  expect(svg).toContain('n/a');
  expect(svg).toContain('stroke-dasharray');
  expect(latencyChart('L', [{ label: 'v', p50: 1, p90: 2, p99: 3, p999: 9 }])).toContain('1.0 / 3.0 / 9.0');
});

test('parseResults: one result or an array; anything else is refused with a stable code', () => {
  expect(parseResults(JSON.stringify(mesh), 'f')).toHaveLength(1);
  expect(parseResults(JSON.stringify([mesh, mesh]), 'f')).toHaveLength(2);
  expect(() => parseResults('{', 'f')).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_BENCH_RESULTS_INVALID' }));
  expect(() => parseResults('{"scenario":"x"}', 'f')).toThrow(expect.objectContaining({ code: 'TESSERA_ERR_BENCH_RESULTS_INVALID' }));
});

test('a fixed-rate run is its own section, chart set and results file beside the closed-loop run', async () => {
  const rated: ScenarioResult = { ...mesh, startedAt: '2026-11-28T14:10:00.000Z', options: { ...mesh.options, rateRps: 1500 } };
  expect(resultKey(mesh)).toBe('mesh');
  expect(resultKey(rated)).toBe('mesh-rate1500');
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-report-'));
  try {
    await writeFile(join(dir, 'mesh.json'), JSON.stringify(mesh));
    await writeFile(join(dir, 'mesh-rate1500.json'), JSON.stringify(rated));
    const loaded = await loadResults([dir]);
    expect(loaded.map(resultKey).sort()).toEqual(['mesh', 'mesh-rate1500']);
    const { markdown, charts } = renderReport(loaded, { chartsDir: 'charts', generatedAt: 'now', commands: rerunCommands(loaded, 'bench/results', 'bench/RESULTS.md') });
    expect(markdown).toContain('## mesh-rate1500');
    expect(markdown).toContain('--rate 1500 --json bench/results/mesh-rate1500.json');
    expect(charts.map((c) => c.file)).toContain('mesh-rate1500-cpu.svg');
    expect(charts.map((c) => c.file)).toContain('mesh-cpu.svg');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('runs of one scenario at other connection counts, and the connection-per-request mesh, are kept apart and ordered', async () => {
  const at = (connections: number, startedAt: string): ScenarioResult => withDefaultConnections({ ...mesh, startedAt, options: { ...mesh.options, connections } }, 32);
  const c8 = at(8, '2026-11-28T15:00:00.000Z');
  const c128 = at(128, '2026-11-28T15:10:00.000Z');
  const c32 = at(32, '2026-11-28T15:20:00.000Z');
  const rated = { ...c32, startedAt: '2026-11-28T15:30:00.000Z', options: { ...c32.options, rateRps: 1000 } };
  const cpr: ScenarioResult = { ...c32, scenario: 'mesh-cpr', startedAt: '2026-11-28T15:40:00.000Z' };
  // The default stays unrecorded, so results taken before keep their key.
  expect(c32.options).not.toHaveProperty('defaultConnections');
  expect(c8.options['defaultConnections']).toBe(32);
  expect([c8, c128, c32, rated, cpr].map(resultKey)).toEqual(['mesh-c8', 'mesh-c128', 'mesh', 'mesh-rate1000', 'mesh-cpr']);
  expect(resultKey({ scenario: 'mesh', options: { connections: 128, defaultConnections: 32, rateRps: 1000 } })).toBe('mesh-c128-rate1000');
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-report-'));
  try {
    for (const r of [c8, c128, c32, rated, cpr]) await writeFile(join(dir, `${resultKey(r)}.json`), JSON.stringify(r));
    const loaded = await loadResults([dir]);
    expect([...loaded].sort(reportOrder).map(resultKey)).toEqual(['mesh-c8', 'mesh', 'mesh-c128', 'mesh-rate1000', 'mesh-cpr']);
    const { markdown, charts } = renderReport(loaded, { chartsDir: 'charts', generatedAt: 'now', commands: rerunCommands(loaded, 'bench/results', 'bench/RESULTS.md') });
    expect(markdown).toContain('- [mesh-c128](#mesh-c128) — measured 2026-11-28T15:10:00.000Z, 2 rounds, 128 connections\n');
    expect(markdown).toContain('- [mesh](#mesh) — measured 2026-11-28T15:20:00.000Z, 2 rounds, 32 connections\n');
    expect(markdown).toContain('- [mesh-rate1000](#mesh-rate1000) — measured 2026-11-28T15:30:00.000Z, 2 rounds, 32 connections, fixed offered load 1000 req/s\n');
    // A scenario run at one connection count only does not repeat it.
    expect(markdown).toContain('- [mesh-cpr](#mesh-cpr) — measured 2026-11-28T15:40:00.000Z, 2 rounds\n');
    expect(markdown).toContain('## mesh-c8\n');
    expect(markdown).not.toContain('defaultConnections');
    expect(markdown).toContain('npx tessera bench mesh --rounds 2 --warmup 1000ms --duration 3000ms --connections 128 --json bench/results/mesh-c128.json');
    expect(markdown).toContain('npx tessera bench mesh-cpr --rounds 2 --warmup 1000ms --duration 3000ms --connections 32 --json bench/results/mesh-cpr.json');
    expect(charts.map((c) => c.file)).toEqual(expect.arrayContaining(['mesh-c8-cpu.svg', 'mesh-c128-cpu.svg', 'mesh-cpu.svg', 'mesh-cpr-cpu.svg']));
    expect(runTitle(cpr, [cpr])).toBe('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
