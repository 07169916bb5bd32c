// Summary rows and headlines of the rotation scenario: failures, latency blip (near-rotation p99 ÷ steady p99), pickup.
import type { Measurement } from '../harness/scenario.js';
import { formatNumber, formatRatio, formatSpread, spread, valuesOf } from '../harness/stats.js';

function perRound(ms: readonly Measurement[], variant: string, a: string, b: string): number[] {
  return ms
    .filter((m) => m['variant'] === variant && typeof m[a] === 'number' && typeof m[b] === 'number' && (m[b] as number) > 0)
    .map((m) => (m[a] as number) / (m[b] as number));
}

function total(ms: readonly Measurement[], variant: string, ...keys: string[]): number {
  return ms.filter((m) => m['variant'] === variant).reduce((acc, m) => acc + keys.reduce((a, k) => a + (typeof m[k] === 'number' ? (m[k] as number) : 0), 0), 0);
}

export function rotationSummary(ms: readonly Measurement[], variants: readonly string[]): Measurement[] {
  return variants.map((v): Measurement => {
    const rows = ms.filter((m) => m['variant'] === v && typeof m['skipped'] !== 'string');
    if (rows.length === 0) return { variant: v, rotations: 'skipped (see notes)' };
    const s = (k: string) => spread(valuesOf(ms, v, k));
    const rotations = total(ms, v, 'rotations');
    return {
      variant: v,
      rotations: `${rotations} (${rows.length} rounds)`,
      'failed requests': total(ms, v, 'errors', 'non2xx'),
      'failed probes': `${total(ms, v, 'probesFailed')} of ${total(ms, v, 'probesOk', 'probesFailed')}`,
      'new cert seen': `${total(ms, v, 'newCertSeen')} of ${rotations}`,
      'pickup ms median (max)': s('pickupMsMedian') ? `${formatNumber(s('pickupMsMedian')!.median)} (${formatNumber(s('pickupMsMax')!.max)})` : '–',
      'req/s': formatSpread(s('reqPerSec')),
      'p99 steady ms': formatSpread(s('p99SteadyMs')),
      'p99 near rotation ms': formatSpread(s('p99NearRotationMs')),
      'blip (near ÷ steady p99)': formatRatio(spread(perRound(ms, v, 'p99NearRotationMs', 'p99SteadyMs'))),
      'max ms': formatSpread(s('maxMs')),
      'rotation metric Δ': s('rotationMetricDelta') ? formatSpread(s('rotationMetricDelta')) : '–',
    };
  });
}

export function rotationHeadlines(ms: readonly Measurement[], variants: readonly string[], o: { connections: number }): string[] {
  const out: string[] = [];
  for (const v of variants) {
    const rows = ms.filter((m) => m['variant'] === v);
    const measured = rows.filter((m) => typeof m['skipped'] !== 'string');
    if (measured.length === 0) {
      out.push(`${v} skipped: ${rows[0]?.['skipped'] ?? 'not measured'}.`);
      continue;
    }
    const failed = total(ms, v, 'errors', 'non2xx') + total(ms, v, 'probesFailed');
    const blip = formatRatio(spread(perRound(ms, v, 'p99NearRotationMs', 'p99SteadyMs')));
    const pick = spread(valuesOf(ms, v, 'pickupMsMax'));
    out.push(
      `${v}: ${total(ms, v, 'rotations')} rotations of both SVIDs under load (${o.connections} connections): ${failed === 0 ? '0 failed requests' : `**${failed} failed requests**`}; ` +
        `p99 within 1 s after a rotation ${blip} the steady p99; a fresh handshake got the new certificate within ${pick ? `${formatNumber(pick.max)} ms` : '– (never seen)'}.`,
    );
  }
  return out;
}
