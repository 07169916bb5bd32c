// Summary rows and headlines for load scenarios through proxy pairs: medians over rounds, per-round ratios to peers.
import type { Measurement } from '../harness/scenario.js';
import { type Spread, formatNumber, formatRatio, formatSpread, perRoundDifferences, perRoundRatios, spread, valuesOf } from '../harness/stats.js';
import { idleCpuCells } from './pair-idle-cpu.js';
import { memoryCells } from './pair-memory.js';

export interface PairSummaryOptions {
  /** Variants in display order. */
  readonly variants: readonly string[];
  /** The variant ratios are taken against first (the nginx pair), then the others. */
  readonly peerBaselines: readonly string[];
  /** The direct (no proxy) variant, for req/s ratio and added latency; absent in scenarios without it. */
  readonly direct?: string;
  /**
   * The variant a row is compared with in a peer's columns (e.g. an edge row against the nginx edge in the nginx
   * columns), or null for "not comparable" (–). Default: the peer baseline itself.
   */
  readonly baselineFor?: (variant: string, peerBaseline: string) => string | null;
}

function skippedReason(ms: readonly Measurement[], variant: string): string | null {
  const rows = ms.filter((m) => m['variant'] === variant);
  if (rows.length === 0) return 'not measured';
  const measured = rows.filter((m) => typeof m['skipped'] !== 'string');
  if (measured.length > 0) return null;
  return String(rows[0]!['skipped']);
}

const s = (ms: readonly Measurement[], v: string, k: string) => spread(valuesOf(ms, v, k));
const med = (x: Spread | null) => (x ? formatNumber(x.median) : '–');

/** Human label for a baseline variant in a column name: "nginx pair" → "nginx", "haproxy pair, h2 upstream" → "HAProxy h2". */
export function shortName(variant: string): string {
  const base = variant.replace(/ pair.*$/, '').replace(/^haproxy/, 'HAProxy');
  return /, h2 upstream$/.test(variant) ? `${base} h2` : base;
}

export function pairSummaryRows(ms: readonly Measurement[], o: PairSummaryOptions): Measurement[] {
  return o.variants.map((v) => {
    const skipped = skippedReason(ms, v);
    // The reason goes to the notes; a long reason in a cell would widen every row.
    if (skipped !== null) return { variant: v, 'req/s': 'skipped (see notes)' };
    const row: Record<string, string | number | null> = { variant: v };
    row['req/s'] = formatSpread(s(ms, v, 'reqPerSec'));
    const base = (b: string) => (o.baselineFor ? o.baselineFor(v, b) : b);
    const ratio = (b: string, metric: string) => {
      const x = base(b);
      return x === null ? '–' : v === x ? '1' : formatRatio(spread(perRoundRatios(ms, v, x, metric)));
    };
    for (const b of o.peerBaselines) row[`req/s ÷ ${shortName(b)}`] = ratio(b, 'reqPerSec');
    if (o.direct) row['req/s ÷ direct'] = v === o.direct ? '1' : formatRatio(spread(perRoundRatios(ms, v, o.direct, 'reqPerSec')));
    const p50 = s(ms, v, 'p50Ms');
    // h2load gives a mean, no percentiles.
    row['p50 / p99 / p99.9 ms'] = p50 ? [p50, s(ms, v, 'p99Ms'), s(ms, v, 'p999Ms')].map(med).join(' / ') : `mean ${med(s(ms, v, 'meanMs'))}`;
    const latencyKey = p50 ? 'p50Ms' : 'meanMs';
    if (o.direct) row[p50 ? 'added p50 ms' : 'added mean ms'] = v === o.direct ? '–' : formatSpread(spread(perRoundDifferences(ms, v, o.direct, latencyKey)));
    const client = s(ms, v, 'cpuUsPerReqClient');
    row['CPU µs/req client'] = formatSpread(client);
    row['CPU µs/req server'] = formatSpread(s(ms, v, 'cpuUsPerReqServer'));
    for (const b of o.peerBaselines) row[`CPU ÷ ${shortName(b)}`] = !client ? '–' : ratio(b, 'cpuUsPerReqProxies');
    row['app CPU µs/req'] = formatSpread(s(ms, v, 'cpuUsPerReqApp'));
    // Idle = right after the pair started (before any load); load = at the end of each measured window.
    Object.assign(row, memoryCells(ms, v));
    // Idle CPU: one shared window after the rounds (scenarios that measure it: mesh, mesh-cpr).
    Object.assign(row, idleCpuCells(ms, v));
    const warm = s(ms, v, 'upstreamConnsWarmup');
    const meas = s(ms, v, 'upstreamConnsMeasured');
    row['upstream TLS conns warm-up / measured'] = warm || meas ? `${med(warm)} / ${formatSpread(meas)}` : '–';
    const fails = ms.filter((m) => m['variant'] === v).reduce((a, m) => a + Number(m['errors'] ?? 0) + Number(m['non2xx'] ?? 0), 0);
    row['failed requests'] = fails;
    return row;
  });
}

/** "Tessera pair: CPU per request per side 60 + 65 µs = 1.6× the nginx pair (1.5–1.9) ..." */
export function pairHeadlines(ms: readonly Measurement[], subject: string, o: PairSummaryOptions): string[] {
  const out: string[] = [];
  const skipped = skippedReason(ms, subject);
  if (skipped !== null) return [`${subject} skipped: ${skipped}.`];
  const rounds = new Set(ms.filter((m) => m['variant'] === subject && typeof m['skipped'] !== 'string').map((m) => m['round'])).size;
  const client = s(ms, subject, 'cpuUsPerReqClient');
  const server = s(ms, subject, 'cpuUsPerReqServer');
  for (const b of o.peerBaselines) {
    if (skippedReason(ms, b) !== null) continue;
    const cpu = spread(perRoundRatios(ms, subject, b, 'cpuUsPerReqProxies'));
    const side = (k: string) => formatRatio(spread(perRoundRatios(ms, subject, b, k)));
    const rps = spread(perRoundRatios(ms, subject, b, 'reqPerSec'));
    const hasP99 = valuesOf(ms, subject, 'p99Ms').length > 0;
    const p99 = spread(perRoundRatios(ms, subject, b, hasP99 ? 'p99Ms' : 'meanMs'));
    out.push(
      `${subject} vs ${b} (same run, ${rounds} rounds, per-round ratios): CPU per request per side ${med(client)} µs client + ${med(server)} µs server = ` +
        `${formatRatio(cpu)} the ${b}'s (${med(s(ms, b, 'cpuUsPerReqClient'))} + ${med(s(ms, b, 'cpuUsPerReqServer'))} µs), ` +
        `per side ${side('cpuUsPerReqClient')} client, ${side('cpuUsPerReqServer')} server; req/s ${formatRatio(rps)}; ${hasP99 ? 'p99' : 'mean latency'} ${formatRatio(p99)}.`,
    );
  }
  if (o.direct && skippedReason(ms, o.direct) === null) {
    const key = valuesOf(ms, subject, 'p50Ms').length > 0 ? 'p50Ms' : 'meanMs';
    const add = spread(perRoundDifferences(ms, subject, o.direct, key));
    const rps = spread(perRoundRatios(ms, subject, o.direct, 'reqPerSec'));
    out.push(`${subject} vs direct: req/s ${formatRatio(rps)}, added ${key === 'p50Ms' ? 'p50' : 'mean'} latency ${formatSpread(add)} ms.`);
  }
  return out;
}

/** Fails (errors + non-2xx) over all measurements, and a note when any. */
export function failureNotes(ms: readonly Measurement[]): string[] {
  const out: string[] = [];
  for (const v of new Set(ms.map((m) => String(m['variant'])))) {
    const rows = ms.filter((m) => m['variant'] === v);
    const fails = rows.reduce((a, m) => a + Number(m['errors'] ?? 0) + Number(m['non2xx'] ?? 0), 0);
    const sample = rows.map((m) => m['errorSample']).find((x) => typeof x === 'string');
    if (fails > 0) out.push(`${v}: ${fails} failed requests over all rounds${sample ? ` (e.g. "${sample}")` : ''}.`);
  }
  return out;
}
