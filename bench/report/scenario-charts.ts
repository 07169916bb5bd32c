// Which charts each scenario's results get: CPU per side, throughput vs peers, latency distribution, handshake cost.
import type { Measurement, ScenarioResult } from '../harness/scenario.js';
import { median, spread, valuesOf } from '../harness/stats.js';
import { type Bar, type BarGroup, groupedBarChart, latencyChart } from './svg-charts.js';

export interface Chart {
  /** File name under the charts directory. */
  readonly file: string;
  readonly title: string;
  readonly svg: string;
}

function bar(ms: readonly Measurement[], variant: string, metric: string): Bar | null {
  const s = spread(valuesOf(ms, variant, metric));
  return s ? { median: s.median, min: s.min, max: s.max } : null;
}

/** Variants in display order: the summary's order, then any other measured variant. */
export function variantsOf(r: ScenarioResult): string[] {
  const out: string[] = [];
  for (const row of [...r.summary, ...r.measurements]) {
    const v = row['variant'];
    if (typeof v === 'string' && !out.includes(v)) out.push(v);
  }
  return out.filter((v) => r.measurements.some((m) => m['variant'] === v && typeof m['skipped'] !== 'string'));
}

function cpuChart(r: ScenarioResult, file: string, title: string): Chart | null {
  const roles = ['Client', 'Server', 'App'].filter((role) => r.measurements.some((m) => typeof m[`cpuUsPerReq${role}`] === 'number'));
  if (roles.length === 0) return null;
  const groups: BarGroup[] = variantsOf(r).map((v) => ({ label: v, values: roles.map((role) => bar(r.measurements, v, `cpuUsPerReq${role}`)) }));
  const series = roles.map((x) => (x === 'App' ? 'app' : `${x.toLowerCase()}-side proxy`));
  return { file, title, svg: groupedBarChart({ title, unit: 'CPU µs per request (median, min–max over rounds)', series, groups }) };
}

function throughputChart(r: ScenarioResult, file: string, title: string): Chart | null {
  const groups = variantsOf(r)
    .map((v) => ({ label: v, values: [bar(r.measurements, v, 'reqPerSec')] }))
    .filter((g) => g.values[0] !== null);
  if (groups.length === 0) return null;
  return { file, title, svg: groupedBarChart({ title, unit: 'requests per second (median, min–max over rounds)', series: ['req/s'], groups }) };
}

function latencyDistribution(r: ScenarioResult, file: string, title: string): Chart | null {
  const rows = variantsOf(r)
    .map((v) => {
      const m = (k: string) => median(valuesOf(r.measurements, v, k));
      return { label: v, p50: m('p50Ms'), p90: m('p90Ms'), p99: m('p99Ms'), p999: m('p999Ms') };
    })
    .filter((x) => Number.isFinite(x.p50) && Number.isFinite(x.p999));
  if (rows.length === 0) return null;
  return { file, title, svg: latencyChart(title, rows) };
}

function handshakeChart(r: ScenarioResult): Chart | null {
  const variants = variantsOf(r).filter((v) => r.measurements.some((m) => m['variant'] === v && typeof m['serverCpuUsPerHandshake'] === 'number'));
  if (variants.length === 0) return null;
  const groups: BarGroup[] = variants.map((v) => ({
    label: v,
    values: [bar(r.measurements, v, 'serverCpuUsPerHandshake'), bar(r.measurements, v, 'clientCpuUsPerHandshake')],
  }));
  const floor = r.measurements.find((m) => typeof m['floorUsPerSide'] === 'number' && m['variant'] === 'crypto floor (Node OpenSSL)');
  const refLines = floor ? [{ value: Number(floor['floorUsPerSide']), label: 'crypto floor' }] : [];
  const title = 'Handshake cost: CPU per mTLS handshake';
  return {
    file: 'handshake-cost.svg',
    title,
    svg: groupedBarChart({ title, unit: 'CPU µs per handshake (median, min–max over rounds)', series: ['server', 'client'], groups, refLines }),
  };
}

function rotationChart(r: ScenarioResult): Chart | null {
  const variants = variantsOf(r);
  if (variants.length === 0) return null;
  const groups: BarGroup[] = variants.map((v) => ({
    label: v,
    values: [bar(r.measurements, v, 'p99SteadyMs'), bar(r.measurements, v, 'p99NearRotationMs'), bar(r.measurements, v, 'maxMs')],
  }));
  const title = 'Latency while SVIDs rotate';
  return { file: 'rotation-latency.svg', title, svg: groupedBarChart({ title, unit: 'ms (median, min–max over rounds)', series: ['p99 steady', 'p99 within 1 s of a rotation', 'max'], groups }) };
}

export function chartsFor(r: ScenarioResult): Chart[] {
  const n = r.scenario;
  const list: (Chart | null)[] = [];
  if (n === 'mesh' || n === 'reuse' || n.startsWith('mesh')) {
    list.push(cpuChart(r, `${n}-cpu.svg`, `${n}: CPU per request per side`));
    list.push(throughputChart(r, `${n}-throughput.svg`, `${n}: throughput vs peers (same run)`));
    list.push(latencyDistribution(r, `${n}-latency.svg`, `${n}: latency distribution`));
  } else if (n.startsWith('balance')) {
    list.push(cpuChart(r, `${n}-cpu.svg`, `${n}: CPU per request, balancer vs static upstream`));
    list.push(latencyDistribution(r, `${n}-latency.svg`, `${n}: latency distribution`));
  } else if (n === 'handshake') {
    list.push(handshakeChart(r));
  } else if (n === 'rotation') {
    list.push(rotationChart(r));
  } else {
    list.push(throughputChart(r, `${n}-throughput.svg`, `${n}: throughput`));
  }
  return list.filter((c): c is Chart => c !== null);
}
