// Headlines of the mesh scenario's paired variants: tracing on vs off, and the Tessera edge vs the nginx edge.
import type { Measurement } from '../harness/scenario.js';
import { formatNumber, formatRatio, formatSpread, perRoundDifferences, perRoundRatios, spread, valuesOf } from '../harness/stats.js';

const measuredRounds = (ms: readonly Measurement[], v: string) => new Set(ms.filter((m) => m['variant'] === v && typeof m['skipped'] !== 'string').map((m) => m['round']));

/** Rounds where both variants were measured. */
function sharedRounds(ms: readonly Measurement[], a: string, b: string): number {
  const rb = measuredRounds(ms, b);
  return [...measuredRounds(ms, a)].filter((r) => rb.has(r)).length;
}

const med = (ms: readonly Measurement[], v: string, k: string) => {
  const s = spread(valuesOf(ms, v, k));
  return s ? formatNumber(s.median) : '–';
};

/** Tracing (sampler ratio 1) vs the same pair without it: per-round ratios of req/s and CPU, differences per side. */
export function tracingHeadlines(ms: readonly Measurement[], on: string, off: string): string[] {
  const n = sharedRounds(ms, on, off);
  if (n === 0) return [];
  const ratio = (k: string) => formatRatio(spread(perRoundRatios(ms, on, off, k)));
  const diff = (k: string) => formatSpread(spread(perRoundDifferences(ms, on, off, k)));
  const sink = valuesOf(ms, on, 'cpuUsPerReqSink').length > 0 ? ` The sink's own CPU (not counted above): ${med(ms, on, 'cpuUsPerReqSink')} µs/req.` : '';
  return [
    `Tracing on (samplerRatio 1, OTLP/HTTP to a loopback sink, both proxies) vs off, same run, ${n} rounds, per-round ratios: req/s ${ratio('reqPerSec')}; ` +
      `CPU per request of both proxies ${ratio('cpuUsPerReqProxies')} (${med(ms, on, 'cpuUsPerReqProxies')} vs ${med(ms, off, 'cpuUsPerReqProxies')} µs), ` +
      `+${diff('cpuUsPerReqClient')} µs/req client side, +${diff('cpuUsPerReqServer')} µs/req server side; p99 ${ratio('p99Ms')}.${sink}`,
  ];
}

/** An edge → sidecar path against its nginx equivalent: CPU per request per side and req/s, per-round ratios. */
export function edgeHeadlines(ms: readonly Measurement[], subject: string, baseline: string): string[] {
  const n = sharedRounds(ms, subject, baseline);
  if (n === 0) return [];
  const ratio = (k: string) => formatRatio(spread(perRoundRatios(ms, subject, baseline, k)));
  return [
    `${subject} vs ${baseline} (same client TLS, certificates and load, ${n} rounds, per-round ratios): CPU per request edge side ` +
      `${med(ms, subject, 'cpuUsPerReqClient')} µs = ${ratio('cpuUsPerReqClient')} nginx's ${med(ms, baseline, 'cpuUsPerReqClient')} µs; sidecar side ` +
      `${med(ms, subject, 'cpuUsPerReqServer')} µs = ${ratio('cpuUsPerReqServer')} nginx's ${med(ms, baseline, 'cpuUsPerReqServer')} µs; both ${ratio('cpuUsPerReqProxies')}; ` +
      `req/s ${ratio('reqPerSec')} (${med(ms, subject, 'reqPerSec')} vs ${med(ms, baseline, 'reqPerSec')}); p99 ${ratio('p99Ms')}.`,
  ];
}

/** What the sink received against what the traced proxies handled: spans lost (queue full) would hide cost. */
export function spanDeliveryNote(spans: number, requestsBothSides: number, exports: number): string {
  const share = requestsBothSides > 0 ? `${((spans / requestsBothSides) * 100).toFixed(1)} %` : '–';
  return `Tracing: the OTLP sink received ${spans} spans in ${exports} exports for ${requestsBothSides} requests handled by the two traced proxies over the whole run (one span per request per proxy expected: ${share}).`;
}
