// The `balance` scenario's arithmetic: each replica's share of a window's requests, the summary rows and the
// headlines (evenness, the slow replica's share, failures while a replica dies, the balancer's CPU per request).
import type { Measurement } from '../harness/scenario.js';
import { type Spread, formatNumber, formatRatio, formatSpread, perRoundDifferences, perRoundRatios, spread, valuesOf } from '../harness/stats.js';

export const BALANCED = 'service: api, 3 replicas';
/** The same single replica (`solo`) reached by a static upstream and by a one-endpoint service: the routing code's own cost. */
export const STATIC = 'upstream: solo replica';
export const ONE = 'service: api-solo, 1 endpoint';
export const SLOW = 'service: api, replica 3 +50 ms';
export const KILLED = 'service: api, a replica SIGKILLed';
export const BALANCE_VARIANTS = [BALANCED, ONE, STATIC, SLOW, KILLED] as const;

/** The issue's bounds: every replica's share under even load, and the slow replica's ceiling, in %. */
export const EVEN_SHARE_BOUNDS = { min: 25, max: 42 } as const;
export const SLOW_SHARE_MAX = 15;
/** Extra CPU per request per side the balancer may cost over a static upstream. */
export const EXTRA_US_PER_SIDE_MAX = 5;

/** Row key of replica `i`'s (1-based) requests in the window, and of its share of them in %. */
export const requestsKey = (i: number) => `requestsReplica${i}`;
export const shareKey = (i: number) => `sharePctReplica${i}`;

/**
 * Each replica's share (in %, one decimal) of the requests its sidecar served in the window, from the per-replica
 * counts; null when a count is missing or nothing was served (no share can be given).
 */
export function replicaShares(counts: readonly (number | null | undefined)[]): number[] | null {
  if (counts.length === 0 || counts.some((c) => typeof c !== 'number' || !Number.isFinite(c) || c < 0)) return null;
  const total = (counts as number[]).reduce((a, c) => a + c, 0);
  if (total === 0) return null;
  return (counts as number[]).map((c) => Math.round((c / total) * 1000) / 10);
}

/** The row with `sharePctReplica<i>` added from its `requestsReplica<i>` counts (unchanged when it has none). */
export function withShares(row: Measurement, replicas: number): Measurement {
  const shares = replicaShares(Array.from({ length: replicas }, (_, i) => row[requestsKey(i + 1)] as number | undefined));
  if (!shares) return row;
  return { ...row, ...Object.fromEntries(shares.map((s, i) => [shareKey(i + 1), s])) };
}

/** Every replica's share over every round of `variant`: min, median, max over all of them. */
export function allShares(ms: readonly Measurement[], variant: string, replicas: number): Spread | null {
  return spread(Array.from({ length: replicas }, (_, i) => valuesOf(ms, variant, shareKey(i + 1))).flat());
}

const sumOf = (ms: readonly Measurement[], variant: string, key: string) => ms.filter((m) => m['variant'] === variant).reduce((a, m) => a + (typeof m[key] === 'number' ? (m[key] as number) : 0), 0);
const failed = (ms: readonly Measurement[], variant: string) => sumOf(ms, variant, 'errors') + sumOf(ms, variant, 'non2xx');
const measured = (ms: readonly Measurement[], variant: string) => ms.some((m) => m['variant'] === variant && typeof m['skipped'] !== 'string');

export function balanceSummary(ms: readonly Measurement[], replicas = 3): Measurement[] {
  return BALANCE_VARIANTS.map((v): Measurement => {
    if (!measured(ms, v)) return { variant: v, requests: 'not measured (see notes)' };
    const s = (k: string) => formatSpread(spread(valuesOf(ms, v, k)));
    const shares = Array.from({ length: replicas }, (_, i) => spread(valuesOf(ms, v, shareKey(i + 1))));
    return {
      variant: v,
      'requests / window': s('requests'),
      'req/s': s('reqPerSec'),
      [`share % ${Array.from({ length: replicas }, (_, i) => `r${i + 1}`).join(' / ')}`]: shares.every((x) => x === null) ? '–' : shares.map((x) => (x ? formatNumber(x.median) : '–')).join(' / '),
      'p50 / p99 ms': `${s('p50Ms')} / ${s('p99Ms')}`,
      'CPU µs/req client side': s('cpuUsPerReqClient'),
      'CPU µs/req replicas (sum)': s('cpuUsPerReqServer'),
      'failed requests': failed(ms, v),
      retries: sumOf(ms, v, 'retries'),
      ejections: sumOf(ms, v, 'ejections'),
      ...(v === KILLED ? { 'back in rotation s': formatSpread(spread(valuesOf(ms, v, 'backInRotationMs').map((x) => x / 1000))) } : {}),
    };
  });
}

const pct = (s: Spread | null) => (s ? `${formatNumber(s.min)}–${formatNumber(s.max)} %` : '–');

/** "Restarted, it was back in rotation after 1.2 (0.8–2.0) s", naming the rounds where it was not within the wait. */
function backInRotation(ms: readonly Measurement[]): string {
  const rows = ms.filter((m) => m['variant'] === KILLED && typeof m['skipped'] !== 'string');
  const back = spread(rows.map((m) => (typeof m['backInRotationMs'] === 'number' ? m['backInRotationMs'] / 1000 : null)));
  const never = rows.filter((m) => m['backInRotationMs'] === null).length;
  return `Started again, the sidecar was back in the caller's rotation (\`/endpoints\` state ready) after ${back ? `${formatSpread(back)} s` : '–'}${never ? `; in ${never} of ${rows.length} rounds not within the wait` : ''}.`;
}

export function balanceHeadlines(ms: readonly Measurement[], o: { readonly replicas: number; readonly offeredRps: number }): string[] {
  const out: string[] = [];
  const rounds = (v: string) => ms.filter((m) => m['variant'] === v && typeof m['skipped'] !== 'string').length;
  if (measured(ms, BALANCED)) {
    const even = allShares(ms, BALANCED, o.replicas);
    const within = even !== null && even.min >= EVEN_SHARE_BOUNDS.min && even.max <= EVEN_SHARE_BOUNDS.max;
    out.push(
      `Evenness: ${o.replicas} replicas, ${formatSpread(spread(valuesOf(ms, BALANCED, 'requests')))} requests per window at ${o.offeredRps} req/s over keep-alive connections: each replica served ${pct(even)} of them (min–max over ${o.replicas} replicas × ${rounds(BALANCED)} rounds); the issue asks ${EVEN_SHARE_BOUNDS.min}–${EVEN_SHARE_BOUNDS.max} %: ${within ? 'met' : 'NOT met'}.`,
    );
  }
  if (measured(ms, SLOW)) {
    const slow = spread(valuesOf(ms, SLOW, shareKey(o.replicas)));
    const met = slow !== null && slow.max < SLOW_SHARE_MAX;
    out.push(`Slow replica: replica ${o.replicas}'s app answering 50 ms later served ${slow ? `${formatSpread(slow)} %` : '–'} of the requests (median (min–max) over ${rounds(SLOW)} rounds); the issue asks under ${SLOW_SHARE_MAX} %: ${met ? 'met' : 'NOT met'}.`);
  }
  if (measured(ms, KILLED)) {
    const n = rounds(KILLED);
    const f = failed(ms, KILLED);
    out.push(
      `Replica killed: in each of ${n} rounds one replica's sidecar was SIGKILLed halfway through the window under GET load: ${f} failed of ${formatNumber(sumOf(ms, KILLED, 'requests') + f)} requests over all rounds (retries ${sumOf(ms, KILLED, 'retries')}, ejections ${sumOf(ms, KILLED, 'ejections')}); the issue asks 0 failed GETs: ${f === 0 ? 'met' : 'NOT met'}. ${backInRotation(ms)}`,
    );
  }
  const side = (a: string, key: string, label: string, judged: boolean) => {
    const d = spread(perRoundDifferences(ms, a, STATIC, key));
    const ratio = formatRatio(spread(perRoundRatios(ms, a, STATIC, key)));
    const verdict = judged ? `; ${d !== null && d.median <= EXTRA_US_PER_SIDE_MAX ? 'within' : 'NOT within'} the issue's ${EXTRA_US_PER_SIDE_MAX} µs/req` : '';
    return `${label} ${formatSpread(spread(valuesOf(ms, a, key)))} vs ${formatSpread(spread(valuesOf(ms, STATIC, key)))} µs/req: ${d && d.median >= 0 ? '+' : ''}${formatSpread(d)} µs/req (${ratio}${verdict})`;
  };
  if (measured(ms, ONE) && measured(ms, STATIC)) {
    out.push(
      `Balancer cost (same run, ${rounds(ONE)} rounds, per-round differences and ratios, median (min–max)), one replica reached through \`service:\` (discovery, P2C, per-request route, routing metrics) vs through \`upstream:\`: ${side(ONE, 'cpuUsPerReqClient', 'client-side sidecar', true)}; ${side(ONE, 'cpuUsPerReqServer', 'replica sidecar', true)}.`,
    );
  }
  if (measured(ms, BALANCED) && measured(ms, STATIC)) {
    out.push(
      `Spreading over 3 replicas vs one (same run; not the balancer's code alone: 3 replica sidecars and apps wake up instead of one on 2 cores): ${side(BALANCED, 'cpuUsPerReqClient', 'client-side sidecar', false)}; ${side(BALANCED, 'cpuUsPerReqServer', 'replica sidecars (summed; each at a third of the rate)', false)}.`,
    );
  }
  return out;
}
