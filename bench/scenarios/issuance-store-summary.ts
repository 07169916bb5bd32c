// Variants, measurement rows, summary rows and headlines of the `issuance-store` scenario: SignSvid throughput,
// latency and CPU per SVID (control-plane replicas, PostgreSQL) for SQLite with 1 replica and PostgreSQL with 1
// and 3 replicas, for mTLS renewal and join-token attestation. Pure: measurements in, text out.
import type { Measurement } from '../harness/scenario.js';
import { formatNumber, formatRatio, formatSpread, perRoundRatios, type Spread, spread, valuesOf } from '../harness/stats.js';
import { type IssuanceMode, type IssuanceWindow, issuanceMeasurement } from './issuance-summary.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface StoreDeployment {
  readonly store: StoreKind;
  readonly replicas: number;
  /** "SQLite ×1", "PostgreSQL ×3". */
  readonly label: string;
}

export const STORE_DEPLOYMENTS: readonly StoreDeployment[] = [
  { store: 'sqlite', replicas: 1, label: 'SQLite ×1' },
  { store: 'postgres', replicas: 1, label: 'PostgreSQL ×1' },
  { store: 'postgres', replicas: 3, label: 'PostgreSQL ×3' },
];

export const STORE_MODES: readonly IssuanceMode[] = ['renewal (mTLS)', 'join token'];

export interface StoreVariantSpec {
  readonly name: string;
  readonly deployment: StoreDeployment;
  readonly mode: IssuanceMode;
}

export function storeVariantName(d: StoreDeployment, mode: IssuanceMode): string {
  return `${d.label}: ${mode}`;
}

export const STORE_VARIANTS: readonly StoreVariantSpec[] = STORE_MODES.flatMap((mode) => STORE_DEPLOYMENTS.map((deployment) => ({ name: storeVariantName(deployment, mode), deployment, mode })));

/** One window: the issuance figures (server CPU = every replica of the deployment) plus PostgreSQL's CPU. */
export interface StoreWindow extends IssuanceWindow {
  /** utime+stime of every PostgreSQL process over the window; null for SQLite. */
  readonly postgresCpuMs: number | null;
  readonly replicas: number;
  readonly lanes: number;
  /** Busy share of all CPUs of the machine over the window (a noise indicator). */
  readonly machineBusy: number;
}

const round = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

export function storeMeasurement(w: StoreWindow): Measurement {
  const per = (ms: number | null) => (ms !== null && w.issued > 0 ? round(ms / w.issued, 3) : null);
  return {
    replicas: w.replicas,
    lanes: w.lanes,
    ...issuanceMeasurement(w),
    postgresCpuMsPerSvid: per(w.postgresCpuMs),
    totalCpuMsPerSvid: per(w.serverCpuMs + (w.postgresCpuMs ?? 0)),
    machineBusy: round(w.machineBusy, 2),
  };
}

function total(ms: readonly Measurement[], variant: string, key: string): number {
  return ms.filter((m) => m['variant'] === variant).reduce((a, m) => a + (typeof m[key] === 'number' ? (m[key] as number) : 0), 0);
}

export function storeSummary(ms: readonly Measurement[], variants: readonly StoreVariantSpec[] = STORE_VARIANTS): Measurement[] {
  return variants.map((v): Measurement => {
    const s = (k: string) => formatSpread(spread(valuesOf(ms, v.name, k)));
    return {
      variant: v.name,
      'SVIDs/s': s('svidsPerSec'),
      'p50 ms': s('p50Ms'),
      'p99 ms': s('p99Ms'),
      'control plane CPU ms/SVID': s('serverCpuMsPerSvid'),
      'PostgreSQL CPU ms/SVID': v.deployment.store === 'postgres' ? s('postgresCpuMsPerSvid') : '–',
      'total CPU ms/SVID': s('totalCpuMsPerSvid'),
      issued: total(ms, v.name, 'issued'),
      errors: total(ms, v.name, 'errors'),
    };
  });
}

const med = (s: Spread | null) => (s ? formatNumber(s.median) : '–');

export function storeHeadlines(ms: readonly Measurement[], variants: readonly StoreVariantSpec[] = STORE_VARIANTS): string[] {
  const out: string[] = [];
  for (const mode of new Set(variants.map((v) => v.mode))) {
    const vs = variants.filter((v) => v.mode === mode && valuesOf(ms, v.name, 'svidsPerSec').length > 0);
    if (vs.length === 0) continue;
    const parts = vs.map((v) => {
      const s = (k: string) => med(spread(valuesOf(ms, v.name, k)));
      const pg = v.deployment.store === 'postgres' ? ` + PostgreSQL ${s('postgresCpuMsPerSvid')}` : '';
      return `${v.deployment.label} ${s('svidsPerSec')} SVIDs/s (p50 ${s('p50Ms')} ms, p99 ${s('p99Ms')} ms; CPU ms/SVID: control plane ${s('serverCpuMsPerSvid')}${pg})`;
    });
    const byLabel = (label: string) => vs.find((v) => v.deployment.label === label)?.name;
    const [sqlite, pg1, pg3] = STORE_DEPLOYMENTS.map((d) => byLabel(d.label));
    // Ratios inside each round (same neighbours, same minute), then their median and min–max over rounds.
    const compare = (a: string | undefined, b: string | undefined, what: string): string | null => {
      if (!a || !b) return null;
      const r = (metric: string) => formatRatio(spread(perRoundRatios(ms, a, b, metric)));
      return `${what}: SVIDs/s ${r('svidsPerSec')}, total CPU per SVID ${r('totalCpuMsPerSvid')}`;
    };
    const ratios = [compare(pg1, sqlite, 'PostgreSQL ×1 ÷ SQLite ×1'), compare(pg3, pg1, 'PostgreSQL ×3 ÷ ×1')].filter((x): x is string => x !== null);
    out.push(`${mode}: ${parts.join('; ')}.${ratios.length ? ` Per round: ${ratios.join('; ')}.` : ''}`);
  }
  const errors = variants.reduce((a, v) => a + total(ms, v.name, 'errors'), 0);
  if (errors > 0) out.push(`**${errors} SignSvid calls failed** during the measured windows (see the measurements): the figures above are not clean.`);
  return out;
}
