// One load measurement through an entry port: warm-up run, then a measured run with CPU/RSS sampled around it.
import type { SecureContext } from 'node:tls';
import { runAutocannon } from './autocannon-load.js';
import { runConnPerRequest } from './conn-per-request-load.js';
import { runH2load } from './h2load-load.js';
import type { LoadOutcome } from './load-outcome.js';
import { type MeasuredProcess, measureWindow } from './measure-window.js';
import { runPacedLoad } from './paced-load.js';
import { runWrk } from './wrk-load.js';
import type { Measurement, ScenarioOptions } from './scenario.js';

/** keep-alive: autocannon HTTP/1.1; conn-per-request: a new connection per request; h2: h2load, h2c prior knowledge. */
export type LoadMode = 'keep-alive' | 'conn-per-request' | 'h2';

export interface LoadVariantSpec {
  readonly port: number;
  readonly mode: LoadMode;
  /** Processes whose CPU is divided by completed requests, by role ("client", "server", "app"). */
  readonly measured: readonly MeasuredProcess[];
  /** mTLS straight to a server-side listener (autocannon `tlsOptions`, or a cached context per connection). */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string; readonly secureContext: SecureContext; readonly servername: string };
  /** keep-alive only: TLS without a client certificate (an edge listener); autocannon does not verify the server. */
  readonly https?: { readonly ca: string };
  /** Upstream TLS connections opened so far (proxy to proxy), to report how many the window opened. */
  readonly upstreamConnections?: () => Promise<number | null>;
  /** The h2load binary, for mode 'h2'. */
  readonly h2load?: string;
  /** Counters read just before and just after the measured window; each difference joins the row under its name. */
  readonly windowCounters?: () => Promise<Readonly<Record<string, number>>>;
  /**
   * keep-alive at a fixed rate: the paced open-loop generator (harness/paced-load.ts) instead of autocannon's bursts.
   * A connection it loses stays lost for the window (its requests count as failures), so scenarios that break
   * upstreams on purpose keep autocannon, which reconnects.
   */
  readonly paced?: boolean;
  /** Called as the measured window starts (e.g. to schedule a fault inside it). */
  readonly onMeasuredStart?: () => void;
}

/** h2load: connections ÷ 8 connections × 8 streams each keep the same number of requests in flight as h1. */
export const H2_STREAMS = 8;

function drive(opts: ScenarioOptions, spec: LoadVariantSpec, durationMs: number, tick?: (elapsedMs: number) => void): Promise<LoadOutcome> {
  const onTick = tick ? (ms: number) => tick(ms) : undefined;
  if (spec.mode === 'h2') {
    if (!spec.h2load) throw new Error('h2load not installed');
    return runH2load({
      h2load: spec.h2load,
      url: `http://127.0.0.1:${spec.port}/`,
      connections: Math.max(1, Math.round(opts.connections / H2_STREAMS)),
      streamsPerConnection: H2_STREAMS,
      durationMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
  // A fixed rate, plaintext or TLS without a client certificate: requests spread evenly (harness/paced-load.ts).
  if (spec.mode === 'keep-alive' && spec.paced && opts.rateRps && !spec.tls) {
    return runPacedLoad({
      host: '127.0.0.1',
      port: spec.port,
      connections: opts.connections,
      rateRps: opts.rateRps,
      durationMs,
      tls: spec.https !== undefined,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(onTick ? { onTick } : {}),
    });
  }
  const url = `${spec.tls || spec.https ? 'https' : 'http'}://127.0.0.1:${spec.port}/`;
  // wrk has no client certificate option: mTLS rows stay with the harness's generators.
  if ((spec.mode === 'keep-alive' || spec.mode === 'conn-per-request') && opts.wrk && !opts.rateRps && !spec.tls) {
    return runWrk({
      wrk: opts.wrk.binary,
      script: opts.wrk.script,
      url,
      connections: opts.connections,
      durationMs,
      close: spec.mode === 'conn-per-request',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
  if (spec.mode === 'keep-alive') {
    return runAutocannon({
      url,
      connections: opts.connections,
      durationMs,
      ...(opts.rateRps ? { rateRps: opts.rateRps } : {}),
      ...(spec.tls ? { tls: { cert: spec.tls.cert, key: spec.tls.key, ca: spec.tls.ca } } : spec.https ? { tls: { ca: spec.https.ca } } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(onTick ? { onTick } : {}),
    });
  }
  return runConnPerRequest({
    host: '127.0.0.1',
    port: spec.port,
    connections: opts.connections,
    durationMs,
    ...(spec.tls ? { tls: { secureContext: spec.tls.secureContext, servername: spec.tls.servername } } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(onTick ? { onTick } : {}),
  });
}

async function countConns(spec: LoadVariantSpec): Promise<number | null> {
  if (!spec.upstreamConnections) return null;
  try {
    return await spec.upstreamConnections();
  } catch {
    return null;
  }
}

const r1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

/**
 * Warm-up (not measured), then the measured window; CPU µs per request per role, latency, errors, RSS. The first
 * measurement of a variant (`first`) is preceded by `opts.primeMs` of closed-loop load, whatever the offered rate.
 */
export async function measureLoadVariant(opts: ScenarioOptions, clk: number, spec: LoadVariantSpec, tick: (fraction: number) => void, first = false): Promise<Measurement> {
  const primeMs = first ? (opts.primeMs ?? 0) : 0;
  const total = primeMs + opts.warmupMs + opts.durationMs;
  if (primeMs > 0) {
    const { rateRps: _closedLoop, ...closed } = opts;
    await drive(closed, spec, primeMs, (ms) => tick(ms / total));
  }
  const c0 = await countConns(spec);
  if (opts.warmupMs > 0) await drive(opts, spec, opts.warmupMs, (ms) => tick((primeMs + ms) / total));
  const c1 = await countConns(spec);
  const k1 = await spec.windowCounters?.();
  const { result: r, sample } = await measureWindow(spec.measured, clk, () => {
    spec.onMeasuredStart?.();
    return drive(opts, spec, opts.durationMs, (ms) => tick((primeMs + opts.warmupMs + ms) / total));
  });
  const c2 = await countConns(spec);
  const k2 = await spec.windowCounters?.();
  const completed = r.ok2xx + r.non2xx;
  const perReq = (us: number | undefined) => (us === undefined || !Number.isFinite(us) || completed === 0 ? null : r1(us / completed));
  const row: Record<string, string | number | null> = {
    mode: spec.mode,
    reqPerSec: Math.round(r.reqPerSec),
    requests: r.ok2xx,
    non2xx: r.non2xx,
    errors: r.errors,
    p50Ms: r3(r.latency.p50Ms),
    p90Ms: r3(r.latency.p90Ms),
    p99Ms: r3(r.latency.p99Ms),
    p999Ms: r3(r.latency.p999Ms),
    maxMs: r3(r.latency.maxMs),
    meanMs: r3(r.latency.meanMs),
    upstreamConnsWarmup: c0 !== null && c1 !== null ? c1 - c0 : null,
    upstreamConnsMeasured: c1 !== null && c2 !== null ? c2 - c1 : null,
    loadGenCpuUsPerReq: perReq(sample.harnessCpuUs),
    machineBusy: r3(sample.machineBusy),
    machineSteal: r3(sample.machineSteal),
    errorSample: r.errorSamples[0] ?? null,
  };
  for (const [name, after] of Object.entries(k2 ?? {})) row[name] = after - (k1?.[name] ?? 0);
  for (const p of spec.measured) {
    const role = p.role.charAt(0).toUpperCase() + p.role.slice(1);
    row[`cpuUsPerReq${role}`] = perReq(sample.cpuUs[p.role]);
    row[`rssMb${role}`] = r1(sample.rssMb[p.role] ?? Number.NaN);
    row[`pssMb${role}`] = r1(sample.pssMb[p.role] ?? Number.NaN);
  }
  if (typeof row['cpuUsPerReqClient'] === 'number' && typeof row['cpuUsPerReqServer'] === 'number') {
    row['cpuUsPerReqProxies'] = r1(row['cpuUsPerReqClient'] + row['cpuUsPerReqServer']);
  }
  // autocannon reports 0 2xx silently against an h2-only server: a window with no success is an error, not a number.
  if (r.ok2xx === 0) row['skipped'] = `no successful response (errors ${r.errors}, non-2xx ${r.non2xx}${r.errorSamples[0] ? `: ${r.errorSamples[0]}` : ''})`;
  return row;
}

/** The log line for one load measurement. */
export function describeLoad(m: Measurement): string {
  if (typeof m['skipped'] === 'string') return `skipped: ${m['skipped']}`;
  const cpu = ['Client', 'Server', 'App']
    .filter((r) => typeof m[`cpuUsPerReq${r}`] === 'number')
    .map((r) => `${r.toLowerCase()} ${m[`cpuUsPerReq${r}`]}`)
    .join(' ');
  const fails = Number(m['errors'] ?? 0) + Number(m['non2xx'] ?? 0);
  return `${m['reqPerSec']} req/s, p50 ${m['p50Ms']} ms, p99 ${m['p99Ms']} ms, CPU µs/req ${cpu}${fails ? `, ${fails} failed` : ''}`;
}
