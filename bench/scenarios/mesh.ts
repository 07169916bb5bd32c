// Scenario `mesh`: direct app vs the Tessera pair vs nginx and HAProxy mTLS pairs, keep-alive HTTP/1.1, same run.
import { type BenchContext, type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { MeasuredProcess } from '../harness/measure-window.js';
import { sampleTree } from '../harness/proc-stat.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { formatRatio, formatSpread, perRoundDifferences, perRoundRatios, spread } from '../harness/stats.js';
import { EDGE_ID } from '../harness/bench-pki.js';
import { sumMetric } from '../peers/tessera-config.js';
import {
  type AppHandle,
  type OtlpSinkHandle,
  type PairHandle,
  type TesseraPairHandle,
  startApp,
  startHaproxyPair,
  startNginxPair,
  startOtlpSink,
  startTesseraPair,
} from '../peers/topology.js';
import { edgeHeadlines, spanDeliveryNote, tracingHeadlines } from './mesh-headlines.js';
import { failureNotes, pairHeadlines, pairSummaryRows } from './pair-summary.js';

export const DIRECT = 'direct app';
export const TESSERA = 'tessera pair';
export const TESSERA_LOG = 'tessera pair + access log';
export const TESSERA_H1 = 'tessera pair, HTTP/1.1 transport';
export const NGINX = 'nginx pair';
export const HAPROXY = 'haproxy pair';
export const TESSERA_TRACE = 'tessera pair + tracing';
export const TESSERA_EDGE = 'tessera edge → sidecar';
export const NGINX_EDGE = 'nginx edge → nginx sidecar';
const EDGES = [TESSERA_EDGE, NGINX_EDGE];

/** Edge rows are compared with the nginx edge in the nginx columns, and with nothing in the HAProxy ones. */
export function meshBaselineFor(variant: string, peer: string): string | null {
  if (!EDGES.includes(variant)) return peer;
  return peer === NGINX ? NGINX_EDGE : null;
}

function skippedVariant(name: string, reason: string): RoundVariant {
  return { name, run: async () => ({ skipped: reason }) };
}

/** The telling line of a start failure: an error/emerg/unknown line from the log tail, else the first line. */
export function shortReason(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  const head = lines[0] ?? 'unknown failure';
  const telling = lines.slice(1).find((l) => /error|unknown|emerg|alert|fatal|cannot|TESSERA_ERR/i.test(l));
  const short = telling ? `${head.replace(/:\s*$/, '')}: ${telling}` : head;
  return short.length > 300 ? `${short.slice(0, 297)}...` : short;
}

/** Starts a pair; a pair that cannot start becomes a variant that reports why, instead of failing the scenario. */
export async function pairVariant(
  ctx: BenchContext,
  app: AppHandle,
  name: string,
  start: () => Promise<PairHandle>,
  measure: (pair: PairHandle, procs: MeasuredProcess[]) => RoundVariant['run'],
): Promise<RoundVariant> {
  try {
    const pair = await start();
    const procs: MeasuredProcess[] = [
      { role: 'client', pid: pair.client.pid },
      { role: 'server', pid: pair.server.pid },
      { role: 'app', pid: app.process.pid },
    ];
    // RSS before any load (the pair has just said it is ready), carried into every row of this variant.
    const mb = (pid: number) => Math.round(sampleTree(pid).rssKb / 102.4) / 10;
    const idle = { rssIdleMbClient: mb(pair.client.pid), rssIdleMbServer: mb(pair.server.pid) };
    const measureOne = measure(pair, procs);
    return { name, run: async (round, tick) => ({ ...(await measureOne(round, tick)), ...idle }) };
  } catch (e) {
    const why = shortReason((e as Error).message);
    const reason = name.startsWith('tessera') ? `proxy not available (${why})` : why;
    // Variants sharing one failed pair share one note.
    const i = ctx.notes.findIndex((n) => n.endsWith(` skipped: ${reason}`));
    if (i >= 0) ctx.notes[i] = `${ctx.notes[i]!.slice(0, -` skipped: ${reason}`.length)}, ${name} skipped: ${reason}`;
    else ctx.notes.push(`${name} skipped: ${reason}`);
    ctx.opts.log(`${name} skipped: ${reason}`);
    return skippedVariant(name, reason);
  }
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true, haproxy: true }, async (ctx) => {
    const clk = ctx.clockTicksPerSecond;
    opts.progress(0, 'starting app and proxy pairs');
    const app = await startApp(ctx.env);
    if (app.kind === 'node') ctx.notes.push('nginx missing: the app is a tiny Node http server (≈4× the CPU per request of the nginx app).');
    const keepAlive = (pair: PairHandle, procs: MeasuredProcess[]) => (_round: number, tick: (f: number) => void) =>
      measureLoadVariant(opts, clk, { port: pair.entryPort, mode: 'keep-alive', measured: procs, upstreamConnections: () => pair.upstreamConnections(), ...muxCounters(pair) }, tick);
    // Edge rows: the same autocannon settings, over TLS (keep-alive, no client certificate) to the edge listener.
    const edgeLoad = (pair: PairHandle, procs: MeasuredProcess[]) => (_round: number, tick: (f: number) => void) =>
      measureLoadVariant(opts, clk, { port: pair.entryPort, mode: 'keep-alive', https: { ca: ctx.pki.rootFile }, measured: procs, upstreamConnections: () => pair.upstreamConnections() }, tick);
    const edgeTls = await ctx.pki.writeLeaf('edge', EDGE_ID);
    let sink: OtlpSinkHandle | null = null;
    let tracedPair: TesseraPairHandle | null = null;
    const startTraced = async () => {
      sink = await startOtlpSink(ctx.env);
      tracedPair = await startTesseraPair(ctx.env, app.port, { name: 'tessera-trace-pair', tracing: { otlpEndpoint: sink.endpoint, samplerRatio: 1 } });
      return tracedPair;
    };
    // The sink's CPU is measured as its own role, never added to the proxies'.
    const traced = (pair: PairHandle, procs: MeasuredProcess[]) => keepAlive(pair, sink ? [...procs, { role: 'sink', pid: sink.process.pid }] : procs);
    const variants: RoundVariant[] = [
      {
        name: DIRECT,
        run: (_r, tick) => measureLoadVariant(opts, clk, { port: app.port, mode: 'keep-alive', measured: [{ role: 'app', pid: app.process.pid }] }, tick),
      },
      await pairVariant(ctx, app, TESSERA, () => startTesseraPair(ctx.env, app.port), keepAlive),
      await pairVariant(ctx, app, TESSERA_H1, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-h1-pair', multiplex: false }), keepAlive),
      await pairVariant(ctx, app, TESSERA_LOG, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-log-pair', accessLog: 'file' }), keepAlive),
      await pairVariant(ctx, app, TESSERA_TRACE, startTraced, traced),
      ctx.binaries.nginx ? await pairVariant(ctx, app, NGINX, () => startNginxPair(ctx.env, app.port), keepAlive) : skippedVariant(NGINX, 'nginx not installed'),
      ctx.binaries.haproxy ? await pairVariant(ctx, app, HAPROXY, () => startHaproxyPair(ctx.env, app.port), keepAlive) : skippedVariant(HAPROXY, 'haproxy not installed'),
      await pairVariant(ctx, app, TESSERA_EDGE, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-edge', edgeTls }), edgeLoad),
      ctx.binaries.nginx ? await pairVariant(ctx, app, NGINX_EDGE, () => startNginxPair(ctx.env, app.port, { edgeTls }), edgeLoad) : skippedVariant(NGINX_EDGE, 'nginx not installed'),
    ];
    const measurements: Measurement[] = await runRounds(opts, variants, describeLoad);
    const delivery = await spanDelivery(sink, tracedPair);
    const names = variants.map((v) => v.name);
    const summaryOpts = { variants: names, peerBaselines: [NGINX, HAPROXY], direct: DIRECT, baselineFor: meshBaselineFor };
    const headlines = [
      ...pairHeadlines(measurements, TESSERA, summaryOpts),
      ...batchingHeadline(measurements, TESSERA),
      ...pairHeadlines(measurements, TESSERA_H1, summaryOpts),
      ...accessLogHeadlines(measurements),
      ...tracingHeadlines(measurements, TESSERA_TRACE, TESSERA),
    ];
    headlines.push(...edgeHeadlines(measurements, TESSERA_EDGE, NGINX_EDGE));
    const nginxVsDirect = pairHeadlines(measurements, NGINX, { variants: names, peerBaselines: [HAPROXY], direct: DIRECT });
    headlines.push(...nginxVsDirect.filter((h) => !h.includes('skipped')));
    return scenarioResult(ctx, 'mesh', {
      measurements,
      summary: pairSummaryRows(measurements, summaryOpts),
      headlines,
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        `Load: autocannon, HTTP/1.1 keep-alive, ${opts.connections} connections, pipelining 1${opts.rateRps ? `, fixed ${opts.rateRps} req/s` : ', closed loop'}; the same for every variant. Warm-up ${opts.warmupMs} ms, measured ${opts.durationMs} ms.`,
        'CPU = utime+stime of all threads (and child processes) from /proc/<pid>/stat around the measured window, divided by completed requests. Ratios are taken per round against the same round, then the median (min–max) over rounds.',
        'Topology of a pair: load → client-side proxy (plaintext in, mTLS out, pooled) → server-side proxy (client cert required and verified) → app. Every proxy runs one worker/thread on the same 2 cores as the load generator and the app.',
        `"${TESSERA}" carries every request between the two proxies as a stream of one multiplexed mTLS connection (\`transport.multiplex\`, the default, docs/transport.md); "${TESSERA_H1}" is the same pair with \`transport.multiplex: false\`: a pooled keep-alive mTLS connection per request in flight.`,
        `Tessera: both proxies run \`tessera proxy --config F\` on Node ${process.version} with file identities; the server side authorizes by a policies directory (one ALLOW policy for the client's SPIFFE ID, not defaultAction allow). "${TESSERA}" has \`telemetry.accessLog: off\`; "${TESSERA_LOG}" writes JSON access lines to a file on both sides.`,
        'Authorization: Tessera and HAProxy check the client SPIFFE ID (policy / DER URI SAN match); nginx cannot (no URI SAN variable) and accepts any SVID of the trust domain.',
        `"${TESSERA_TRACE}": the same pair with \`telemetry.tracing\` (samplerRatio 1) on both proxies, exporting OTLP/HTTP JSON to a sink the harness runs as its own process on loopback (POST /v1/traces → 200); its CPU is reported apart, not in the proxies'.`,
        ...(delivery ? [delivery] : []),
        `Edge rows: the load generator speaks HTTPS (TLS 1.3, keep-alive, no client certificate; the same connections and pipelining as every other row) to an edge that terminates it with one ECDSA P-256 certificate (DNS SAN edge.bench.local, same CA) and forwards over mTLS to a sidecar in front of the app. "${TESSERA_EDGE}": a Tessera \`edge\` listener (route \`*\` / to the sidecar, \`authorize: false\`) → the Tessera server side (policy as above). "${NGINX_EDGE}": nginx \`listen ssl\` with the client-side pool settings above → the nginx server side. In their rows, "client" is the edge and "server" the sidecar, and the "÷ nginx" columns are against the nginx edge of the same round (HAProxy has no edge row). The load generator's own TLS work lowers the closed-loop rate of both edge rows alike; compare them with each other.`,
      ],
    });
  });
}

/** A Tessera pair's multiplexed-transport counters around the window: TLS writes and reads of each side's sessions. */
export function muxCounters(pair: PairHandle): { windowCounters?: () => Promise<Record<string, number>> } {
  if (!('metrics' in pair)) return {};
  const t = pair as TesseraPairHandle;
  const read = async (side: 'client' | 'server') => {
    const text = await t.metrics(side);
    return { writes: sumMetric(text, 'tessera_mux_tls_writes_total') ?? 0, reads: sumMetric(text, 'tessera_mux_tls_reads_total') ?? 0 };
  };
  return {
    windowCounters: async () => {
      const [c, s] = await Promise.all([read('client'), read('server')]);
      return { muxTlsWritesClient: c.writes, muxTlsReadsClient: c.reads, muxTlsWritesServer: s.writes, muxTlsReadsServer: s.reads };
    },
  };
}

/** Requests per TLS write and per TLS read of the multiplexed session, per side, over the measured windows. */
export function batchingHeadline(ms: readonly Measurement[], variant: string): string[] {
  const rows = ms.filter((m) => m['variant'] === variant && typeof m['skipped'] !== 'string' && typeof m['muxTlsWritesClient'] === 'number');
  if (rows.length === 0) return [];
  const sum = (k: string) => rows.reduce((a, m) => a + Number(m[k] ?? 0), 0);
  const reqs = sum('requests') + sum('non2xx');
  const per = (k: string) => {
    const n = sum(k);
    return n > 0 ? (reqs / n).toFixed(1) : '–';
  };
  if (sum('muxTlsWritesClient') === 0) return [`${variant}: no multiplexed session carried the load (the pair fell back to HTTP/1.1).`];
  return [
    `${variant}, batching of the multiplexed session over ${rows.length} measured windows: requests per TLS write ${per('muxTlsWritesClient')} client side, ${per('muxTlsWritesServer')} server side; per TLS read ${per('muxTlsReadsServer')} server side, ${per('muxTlsReadsClient')} client side.`,
  ];
}

/** Spans the sink received vs requests the traced proxies handled (after the last export had time to go out). */
async function spanDelivery(sink: OtlpSinkHandle | null, pair: TesseraPairHandle | null): Promise<string | null> {
  if (!sink || !pair) return null;
  try {
    // BatchSpanProcessor exports every second: wait for the last batch.
    await new Promise((r) => setTimeout(r, 1_500));
    const requests = async (side: 'client' | 'server') => sumMetric(await pair.metrics(side), 'tessera_requests_total') ?? 0;
    const [stats, c, s] = await Promise.all([sink.stats(), requests('client'), requests('server')]);
    return spanDeliveryNote(stats.spans, c + s, stats.exports);
  } catch (e) {
    return `Tracing: could not read the span count (${(e as Error).message}).`;
  }
}

/** What the access log costs: per-round differences of the two Tessera variants, per side. */
export function accessLogHeadlines(ms: readonly Measurement[]): string[] {
  const rows = (v: string) => ms.filter((m) => m['variant'] === v && typeof m['skipped'] !== 'string').length;
  if (rows(TESSERA) === 0 || rows(TESSERA_LOG) === 0) return [];
  const diff = (k: string) => formatSpread(spread(perRoundDifferences(ms, TESSERA_LOG, TESSERA, k)));
  const cpu = formatRatio(spread(perRoundRatios(ms, TESSERA_LOG, TESSERA, 'cpuUsPerReqProxies')));
  const rps = formatRatio(spread(perRoundRatios(ms, TESSERA_LOG, TESSERA, 'reqPerSec')));
  return [
    `Access log to a file (both sides) vs off, same run, per-round differences: CPU +${diff('cpuUsPerReqClient')} µs/req client side, +${diff('cpuUsPerReqServer')} µs/req server side (${cpu} the proxies' CPU); req/s ${rps}.`,
  ];
}

export const meshScenario: BenchScenario = {
  name: 'mesh',
  summary:
    'Direct app vs Tessera pair (access log off / to a file, tracing on) vs nginx and HAProxy mTLS pairs, and Tessera edge vs nginx edge (keep-alive HTTP/1.1): CPU µs/req per side, req/s, latency, RSS',
  defaults: { rounds: 5, warmupMs: 300, durationMs: 1_500, connections: 32 },
  run,
};
