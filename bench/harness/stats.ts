// Statistics over rounds: medians, min–max spread, and ratios taken per round against a baseline of the same round.
import type { Measurement } from './scenario.js';

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** null when there is no finite value. */
export function spread(xs: readonly (number | null | undefined)[]): Spread | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** (max − min) / median, the run-to-run spread as a fraction. */
export function relativeSpread(s: Spread): number {
  return s.median === 0 ? 0 : (s.max - s.min) / s.median;
}

function num(m: Measurement, key: string): number | null {
  const v = m[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Values of one metric for one variant, over rounds (skipped measurements have no number). */
export function valuesOf(ms: readonly Measurement[], variant: string, metric: string): number[] {
  return ms.filter((m) => m['variant'] === variant).map((m) => num(m, metric)).filter((x): x is number => x !== null);
}

/**
 * Ratio of `variant` to `baseline` for a metric, computed inside each round (same load, same neighbours) and then
 * summarised over rounds. Rounds where either side is missing are left out.
 */
export function perRoundRatios(ms: readonly Measurement[], variant: string, baseline: string, metric: string, baselineMetric = metric): number[] {
  return perRound(ms, variant, baseline, metric, baselineMetric, (x, y) => (y === 0 ? null : x / y));
}

/** Per-round difference `variant − baseline` (e.g. added latency over direct). */
export function perRoundDifferences(ms: readonly Measurement[], variant: string, baseline: string, metric: string): number[] {
  return perRound(ms, variant, baseline, metric, metric, (x, y) => x - y);
}

/** `combine(variant, baseline)` inside each round where both are measured (null leaves the round out). */
function perRound(ms: readonly Measurement[], variant: string, baseline: string, metric: string, baselineMetric: string, combine: (x: number, y: number) => number | null): number[] {
  const out: number[] = [];
  for (const r of new Set(ms.map((m) => m['round']))) {
    const a = ms.find((m) => m['round'] === r && m['variant'] === variant);
    const b = ms.find((m) => m['round'] === r && m['variant'] === baseline);
    const x = a ? num(a, metric) : null;
    const y = b ? num(b, baselineMetric) : null;
    const v = x !== null && y !== null ? combine(x, y) : null;
    if (v !== null) out.push(v);
  }
  return out;
}

/** A human number: 3 significant digits below 1000, grouped thousands above ("12 345"). */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const abs = Math.abs(x);
  if (abs >= 1000 || Number.isInteger(x)) return Math.round(x).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  if (abs === 0) return '0';
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** "60.2 (48.1–72.3)", or "60.2" for one round, or "–" when nothing was measured. */
export function formatSpread(s: Spread | null, suffix = ''): string {
  if (!s) return '–';
  if (s.n === 1 || s.min === s.max) return `${formatNumber(s.median)}${suffix}`;
  return `${formatNumber(s.median)}${suffix} (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

/** "1.63× (1.52–1.90)". */
export function formatRatio(s: Spread | null): string {
  if (!s) return '–';
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (s.n === 1 || s.min === s.max) return `${f(s.median)}×`;
  return `${f(s.median)}× (${f(s.min)}–${f(s.max)})`;
}

/** Round-robin order for round `round` (0-based): every variant once, starting one later each round. */
export function rotatedOrder<T>(variants: readonly T[], round: number): T[] {
  if (variants.length === 0) return [];
  const k = ((round % variants.length) + variants.length) % variants.length;
  return [...variants.slice(k), ...variants.slice(0, k)];
}
