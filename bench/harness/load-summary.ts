// The text summary `tessera load` prints: throughput, latency percentiles, statuses and errors of one run.
import type { LoadResult } from './autocannon-load.js';
import { formatNumber } from './stats.js';

export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.001 ? 3 : 1)} %`;
}

export function loadSummary(url: string, r: LoadResult): string {
  const l = r.latency;
  const ms = (x: number) => (Number.isFinite(x) ? formatNumber(x) : '–');
  const statuses = Object.entries(r.statusCounts).sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code} × ${formatNumber(n)}`);
  return [
    `target     ${url}`,
    `requests   ${formatNumber(r.responses)} in ${(r.elapsedMs / 1000).toFixed(1)} s = ${formatNumber(r.reqPerSec)} req/s (2xx)`,
    `latency ms p50 ${ms(l.p50Ms)}  p90 ${ms(l.p90Ms)}  p99 ${ms(l.p99Ms)}  p99.9 ${ms(l.p999Ms)}  max ${ms(l.maxMs)}  mean ${ms(l.meanMs)}`,
    `status     ${statuses.length ? statuses.join(', ') : 'none'}`,
    `errors     ${formatNumber(r.connectionErrors + r.timeouts + r.non2xx)} (${percent(r.errorRate)}): TLS/connection ${formatNumber(r.connectionErrors)}, non-2xx ${formatNumber(r.non2xx)}, timeouts ${formatNumber(r.timeouts)}${r.errorSamples.length ? ` — e.g. ${r.errorSamples.join('; ')}` : ''}`,
    '',
  ].join('\n');
}
