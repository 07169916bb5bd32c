// Summary rows and headlines of the issuance scenario: SVIDs signed per second, p50/p99 latency, server CPU per
// SVID, for join-token attestation and mTLS renewal at each concurrency. Pure: measurements in, text out.
import type { Measurement } from '../harness/scenario.js';
import { type Spread, formatNumber, formatRatio, formatSpread, perRoundRatios, spread, valuesOf } from '../harness/stats.js';

export type IssuanceMode = 'join token' | 'renewal (mTLS)';

export interface IssuanceVariantSpec {
  readonly name: string;
  readonly mode: IssuanceMode;
  readonly concurrency: number;
}

export function issuanceVariantName(mode: IssuanceMode, concurrency: number): string {
  return `${mode}, concurrency ${concurrency}`;
}

export const ISSUANCE_VARIANTS: readonly IssuanceVariantSpec[] = (['join token', 'renewal (mTLS)'] as const).flatMap((mode) =>
  [1, 8].map((concurrency) => ({ name: issuanceVariantName(mode, concurrency), mode, concurrency })),
);

/** What one measurement window observed, before it becomes a Measurement row. */
export interface IssuanceWindow {
  readonly issued: number;
  readonly errors: number;
  readonly wallMs: number;
  readonly serverCpuMs: number;
  readonly clientCpuMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** True when the window ended because the join tokens made for it were used up, not at the deadline. */
  readonly ranOutOfTokens: boolean;
}

const round = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

export function issuanceMeasurement(w: IssuanceWindow): Measurement {
  const per = (ms: number) => (w.issued > 0 ? round(ms / w.issued, 3) : null);
  return {
    svidsPerSec: w.wallMs > 0 ? round((w.issued * 1000) / w.wallMs, 1) : null,
    p50Ms: round(w.p50Ms, 2),
    p99Ms: round(w.p99Ms, 2),
    maxMs: round(w.maxMs, 2),
    serverCpuMsPerSvid: per(w.serverCpuMs),
    clientCpuMsPerSvid: per(w.clientCpuMs),
    issued: w.issued,
    errors: w.errors,
    windowMs: Math.round(w.wallMs),
    ranOutOfTokens: w.ranOutOfTokens ? 1 : 0,
  };
}

function total(ms: readonly Measurement[], variant: string, key: string): number {
  return ms.filter((m) => m['variant'] === variant).reduce((a, m) => a + (typeof m[key] === 'number' ? (m[key] as number) : 0), 0);
}

export function issuanceSummary(ms: readonly Measurement[], variants: readonly IssuanceVariantSpec[] = ISSUANCE_VARIANTS): Measurement[] {
  return variants.map((v): Measurement => {
    const s = (k: string) => spread(valuesOf(ms, v.name, k));
    return {
      variant: v.name,
      'SVIDs/s': formatSpread(s('svidsPerSec')),
      'p50 ms': formatSpread(s('p50Ms')),
      'p99 ms': formatSpread(s('p99Ms')),
      'server CPU ms/SVID': formatSpread(s('serverCpuMsPerSvid')),
      'client CPU ms/SVID': formatSpread(s('clientCpuMsPerSvid')),
      issued: total(ms, v.name, 'issued'),
      errors: total(ms, v.name, 'errors'),
    };
  });
}

const med = (s: Spread | null) => (s ? formatNumber(s.median) : '–');

export function issuanceHeadlines(ms: readonly Measurement[], variants: readonly IssuanceVariantSpec[] = ISSUANCE_VARIANTS): string[] {
  const out: string[] = [];
  for (const mode of new Set(variants.map((v) => v.mode))) {
    const vs = variants.filter((v) => v.mode === mode).sort((a, b) => a.concurrency - b.concurrency);
    const parts = vs
      .filter((v) => valuesOf(ms, v.name, 'svidsPerSec').length > 0)
      .map((v) => {
        const s = (k: string) => spread(valuesOf(ms, v.name, k));
        return `${med(s('svidsPerSec'))} SVIDs/s at concurrency ${v.concurrency} (p50 ${med(s('p50Ms'))} ms, p99 ${med(s('p99Ms'))} ms)`;
      });
    if (parts.length === 0) continue;
    const cpu = spread(vs.flatMap((v) => valuesOf(ms, v.name, 'serverCpuMsPerSvid')));
    const ceiling = cpu && cpu.median > 0 ? `, i.e. about ${formatNumber(1000 / cpu.median)} SVIDs/s per server core` : '';
    const lo = vs[0];
    const hi = vs.at(-1);
    const ratio = lo && hi && lo !== hi ? spread(perRoundRatios(ms, hi.name, lo.name, 'svidsPerSec')) : null;
    const scale = ratio ? `; concurrency ${hi!.concurrency} ÷ ${lo!.concurrency}: ${formatRatio(ratio)} SVIDs/s` : '';
    out.push(`${mode}: ${parts.join(', ')}; server CPU ${med(cpu)} ms per SVID${ceiling}${scale}.`);
  }
  const errors = variants.reduce((a, v) => a + total(ms, v.name, 'errors'), 0);
  if (errors > 0) out.push(`**${errors} SignSvid calls failed** during the measured windows (see the measurements): the figures above are not clean.`);
  return out;
}
