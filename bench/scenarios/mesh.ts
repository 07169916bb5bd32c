// Scenarios `mesh` (keep-alive HTTP/1.1 clients) and `mesh-cpr` (a new client connection per request): the direct
// app vs the Tessera pairs vs nginx and HAProxy (h1 and h2 upstream) mTLS pairs, same run.
import { type BenchContext, type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { MeasuredProcess } from '../harness/measure-window.js';
import { samplePssKb, sampleTree } from '../harness/proc-stat.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { formatRatio, formatSpread, perRoundDifferences, perRoundRatios, spread } from '../harness/stats.js';
import { EDGE_ID, type LeafFiles } from '../harness/bench-pki.js';
import { startNodeFloorPair } from '../peers/node-floor-pair.js';
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
import { type MeshMode, meshNotes } from './mesh-notes.js';
import { type IdlePair, idleCpuHeadline, idleCpuNote, measurePairsIdle, withIdleCpu } from './pair-idle-cpu.js';
import { memoryHeadline } from './pair-memory.js';
import { failureNotes, pairHeadlines, pairSummaryRows } from './pair-summary.js';

export const DIRECT = 'direct app';
export const TESSERA = 'tessera pair';
export const TESSERA_LOG = 'tessera pair + access log';
export const TESSERA_H1 = 'tessera pair, HTTP/1.1 transport';
export const NGINX = 'nginx pair';
export const HAPROXY = 'haproxy pair';
export const HAPROXY_H2 = 'haproxy pair, h2 upstream';
export const TESSERA_TRACE = 'tessera pair + tracing';
export const TESSERA_EDGE = 'tessera edge → sidecar';
export const NGINX_EDGE = 'nginx edge → nginx sidecar';
/** The same pair run from another build (`--baseline-cli`): a change measured against it in the same rounds. */
export const TESSERA_BASELINE = 'tessera pair, baseline build';
/** Two Node processes, one multiplexed mTLS connection, none of a sidecar's work (harness/children/node-floor.ts). */
export const NODE_FLOOR = 'node floor pair';
const EDGES = [TESSERA_EDGE, NGINX_EDGE];

/** Edge rows are compared with the nginx edge in the nginx columns, and with nothing in the HAProxy ones. */
export function meshBaselineFor(variant: string, peer: string): string | null {
  if (!EDGES.includes(variant)) return peer;
  return peer === NGINX ? NGINX_EDGE : null;
}

/** A variant whose pair started: its sides' pids, to read them again after the rounds (idle CPU). */
export interface PairRoundVariant extends RoundVariant {
  readonly sides?: { readonly client: number; readonly server: number };
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
): Promise<PairRoundVariant> {
  try {
    const pair = await start();
    const procs: MeasuredProcess[] = [
      { role: 'client', pid: pair.client.pid },
      { role: 'server', pid: pair.server.pid },
      { role: 'app', pid: app.process.pid },
    ];
    // RSS and PSS before any load (the pair has just said it is ready), carried into every row of this variant.
    const mb = (kb: number | null) => (kb === null ? null : Math.round(kb / 102.4) / 10);
    const idle = {
      rssIdleMbClient: mb(sampleTree(pair.client.pid).rssKb),
      rssIdleMbServer: mb(sampleTree(pair.server.pid).rssKb),
      pssIdleMbClient: mb(samplePssKb(pair.client.pid)),
      pssIdleMbServer: mb(samplePssKb(pair.server.pid)),
    };
    const measureOne = measure(pair, procs);
    return { name, run: async (round, tick) => ({ ...(await measureOne(round, tick)), ...idle }), sides: { client: pair.client.pid, server: pair.server.pid } };
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

/** The rows a mode measures: every row with keep-alive clients; the pairs and direct with a connection per request. */
export function meshRows(mode: MeshMode, baseline = false): string[] {
  // The node floor parses nothing, so it would pass a caller's `Connection: close` on to the app: keep-alive only.
  const pairs = baseline ? [TESSERA, TESSERA_BASELINE] : [TESSERA];
  const core = [DIRECT, ...pairs, TESSERA_H1, NGINX, HAPROXY, HAPROXY_H2];
  if (mode === 'conn-per-request') return core;
  return [DIRECT, ...pairs, TESSERA_H1, TESSERA_LOG, TESSERA_TRACE, NGINX, HAPROXY, HAPROXY_H2, NODE_FLOOR, TESSERA_EDGE, NGINX_EDGE];
}

const ROW_NAMES = { tessera: TESSERA, tesseraH1: TESSERA_H1, tesseraLog: TESSERA_LOG, tesseraTrace: TESSERA_TRACE, haproxy: HAPROXY, haproxyH2: HAPROXY_H2, tesseraEdge: TESSERA_EDGE, nginxEdge: NGINX_EDGE };

async function runMesh(given: ScenarioOptions, mode: MeshMode): Promise<ScenarioResult> {
  // A connection per request is a closed loop of its own: a fixed rate does not apply (nor goes into the result key).
  const rateIgnored = mode === 'conn-per-request' && given.rateRps !== undefined;
  const { rateRps: _rate, ...rest } = given;
  const opts: ScenarioOptions = mode === 'conn-per-request' ? rest : given;
  return withBenchContext(opts, { nginx: true, haproxy: true }, async (ctx) => {
    const clk = ctx.clockTicksPerSecond;
    opts.progress(0, 'starting app and proxy pairs');
    const app = await startApp(ctx.env);
    if (app.kind === 'node') ctx.notes.push('nginx missing: the app is a tiny Node http server (≈4× the CPU per request of the nginx app).');
    const load = (pair: PairHandle, procs: MeasuredProcess[]) => (round: number, tick: (f: number) => void) =>
      measureLoadVariant(opts, clk, { port: pair.entryPort, mode, paced: true, measured: procs, upstreamConnections: () => pair.upstreamConnections(), ...muxCounters(pair) }, tick, round === 0);
    // Edge rows: the same autocannon settings, over TLS (keep-alive, no client certificate) to the edge listener.
    const edgeLoad = (pair: PairHandle, procs: MeasuredProcess[]) => (round: number, tick: (f: number) => void) =>
      measureLoadVariant(opts, clk, { port: pair.entryPort, mode: 'keep-alive', paced: true, https: { ca: ctx.pki.rootFile }, measured: procs, upstreamConnections: () => pair.upstreamConnections() }, tick, round === 0);
    // One edge certificate for both edges, written only when an edge row runs.
    let edgeLeaf: Promise<LeafFiles> | null = null;
    const edgeTls = () => (edgeLeaf ??= ctx.pki.writeLeaf('edge', EDGE_ID));
    let sink: OtlpSinkHandle | null = null;
    let tracedPair: TesseraPairHandle | null = null;
    const startTraced = async () => {
      sink = await startOtlpSink(ctx.env);
      tracedPair = await startTesseraPair(ctx.env, app.port, { name: 'tessera-trace-pair', tracing: { otlpEndpoint: sink.endpoint, samplerRatio: 1 } });
      return tracedPair;
    };
    // The sink's CPU is measured as its own role, never added to the proxies'.
    const traced = (pair: PairHandle, procs: MeasuredProcess[]) => load(pair, sink ? [...procs, { role: 'sink', pid: sink.process.pid }] : procs);
    const nginx = (name: string, start: () => Promise<PairHandle>, m: typeof load) => (ctx.binaries.nginx ? pairVariant(ctx, app, name, start, m) : skippedVariant(name, 'nginx not installed'));
    const haproxy = (name: string, start: () => Promise<PairHandle>) => (ctx.binaries.haproxy ? pairVariant(ctx, app, name, start, load) : skippedVariant(name, 'haproxy not installed'));
    const starts: Record<string, () => Promise<PairRoundVariant> | PairRoundVariant> = {
      [DIRECT]: () => ({ name: DIRECT, run: (r, tick) => measureLoadVariant(opts, clk, { port: app.port, mode, paced: true, measured: [{ role: 'app', pid: app.process.pid }] }, tick, r === 0) }),
      [TESSERA]: () => pairVariant(ctx, app, TESSERA, () => startTesseraPair(ctx.env, app.port), load),
      [TESSERA_BASELINE]: () => pairVariant(ctx, app, TESSERA_BASELINE, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-baseline-pair', cli: opts.baselineCli! }), load),
      [TESSERA_H1]: () => pairVariant(ctx, app, TESSERA_H1, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-h1-pair', multiplex: false }), load),
      [TESSERA_LOG]: () => pairVariant(ctx, app, TESSERA_LOG, () => startTesseraPair(ctx.env, app.port, { name: 'tessera-log-pair', accessLog: 'file' }), load),
      [TESSERA_TRACE]: () => pairVariant(ctx, app, TESSERA_TRACE, startTraced, traced),
      [NGINX]: () => nginx(NGINX, () => startNginxPair(ctx.env, app.port), load),
      [HAPROXY]: () => haproxy(HAPROXY, () => startHaproxyPair(ctx.env, app.port)),
      [HAPROXY_H2]: () => haproxy(HAPROXY_H2, () => startHaproxyPair(ctx.env, app.port, { h2Upstream: true })),
      [NODE_FLOOR]: () => pairVariant(ctx, app, NODE_FLOOR, () => startNodeFloorPair(ctx.env, app.port), load),
      [TESSERA_EDGE]: async () => pairVariant(ctx, app, TESSERA_EDGE, async () => startTesseraPair(ctx.env, app.port, { name: 'tessera-edge', edgeTls: await edgeTls() }), edgeLoad),
      [NGINX_EDGE]: () => nginx(NGINX_EDGE, async () => startNginxPair(ctx.env, app.port, { edgeTls: await edgeTls() }), edgeLoad),
    };
    const variants: PairRoundVariant[] = [];
    for (const name of meshRows(mode, opts.baselineCli !== undefined)) variants.push(await starts[name]!());
    const rounds: Measurement[] = await runRounds(opts, variants, describeLoad);
    const delivery = await spanDelivery(sink, tracedPair);
    // Every pair that started is still running: one shared window without load (the direct row has no proxy).
    const idlePairs = variants.flatMap((v): IdlePair[] => (v.sides ? [{ name: v.name, ...v.sides }] : []));
    const idle = idlePairs.length > 0 ? await measurePairsIdle(opts, clk, idlePairs) : null;
    const measurements = idle ? withIdleCpu(rounds, idle.fields) : rounds;
    const names = variants.map((v) => v.name);
    const idleHeadlines = idle ? idleCpuHeadline(measurements, names, idle.result.windowMs) : [];
    for (const h of idleHeadlines) opts.log(h);
    const summaryOpts = { variants: names, peerBaselines: [NGINX, HAPROXY, HAPROXY_H2], direct: DIRECT, baselineFor: meshBaselineFor };
    const headlines = [
      ...pairHeadlines(measurements, TESSERA, summaryOpts),
      ...batchingHeadline(measurements, TESSERA),
      ...memoryHeadline(measurements, TESSERA),
      ...pairHeadlines(measurements, TESSERA_H1, summaryOpts),
      ...memoryHeadline(measurements, TESSERA_H1),
      ...floorHeadlines(measurements, names),
      ...baselineHeadlines(measurements, names),
      ...idleHeadlines,
    ];
    if (mode === 'keep-alive') {
      headlines.push(...accessLogHeadlines(measurements), ...tracingHeadlines(measurements, TESSERA_TRACE, TESSERA), ...edgeHeadlines(measurements, TESSERA_EDGE, NGINX_EDGE));
    }
    const peers = pairHeadlines(measurements, NGINX, { variants: names, peerBaselines: [HAPROXY, HAPROXY_H2], direct: DIRECT });
    headlines.push(...peers.filter((h) => !h.includes('skipped')));
    return scenarioResult(ctx, mode === 'keep-alive' ? 'mesh' : 'mesh-cpr', {
      measurements,
      summary: pairSummaryRows(measurements, summaryOpts),
      headlines,
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        ...meshNotes(opts, mode, ROW_NAMES, rateIgnored),
        ...baselineNote(opts.baselineCli),
        ...(delivery ? [delivery] : []),
        ...(idle ? [idleCpuNote(idle.result)] : []),
      ],
      ...(idle ? { options: { idleWindowMs: idle.result.windowMs } } : {}),
    });
  });
}

/** How far Tessera is above Node's own floor for this shape, and where that floor stands against nginx. */
function floorHeadlines(ms: readonly Measurement[], names: string[]): string[] {
  if (!names.includes(NODE_FLOOR)) return [];
  const vs = (subject: string, baseline: string) => pairHeadlines(ms, subject, { variants: names, peerBaselines: [baseline] });
  return [...vs(TESSERA, NODE_FLOOR), ...vs(NODE_FLOOR, NGINX), ...memoryHeadline(ms, NODE_FLOOR)];
}

/** This build against the baseline build, when the run has one: the per-round ratios a change is judged by. */
export function baselineHeadlines(ms: readonly Measurement[], names: string[]): string[] {
  if (!names.includes(TESSERA_BASELINE)) return [];
  return [...pairHeadlines(ms, TESSERA, { variants: names, peerBaselines: [TESSERA_BASELINE] }), ...memoryHeadline(ms, TESSERA_BASELINE)];
}

export function baselineNote(cli: string | undefined): string[] {
  if (cli === undefined) return [];
  return [
    `"${TESSERA_BASELINE}": the same pair, configs and load, its two proxies run from ${cli} (\`--baseline-cli\`), measured in the same rounds as "${TESSERA}" (this build); the headline "${TESSERA} vs ${TESSERA_BASELINE}" is the change between the builds, per round. The configs are this build's: a baseline build must read them.`,
  ];
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
    'Direct app vs Tessera pair (multiplexed / HTTP/1.1 transport, access log, tracing) vs nginx and HAProxy (h1 and h2 upstream) mTLS pairs and a featureless Node floor pair, and Tessera edge vs nginx edge (keep-alive HTTP/1.1): CPU µs/req per side, req/s, latency, RSS/PSS, idle CPU after the rounds',
  defaults: { rounds: 5, primeMs: 3_000, warmupMs: 300, durationMs: 1_500, connections: 32 },
  run: (opts) => runMesh(opts, 'keep-alive'),
};

export const meshCprScenario: BenchScenario = {
  name: 'mesh-cpr',
  summary: 'The mesh pairs (Tessera multiplexed / HTTP/1.1, nginx, HAProxy h1 / h2 upstream) with a new client connection per request: CPU µs/req per side, client-side RSS/PSS idle → load, idle CPU after the rounds',
  defaults: { rounds: 5, primeMs: 3_000, warmupMs: 500, durationMs: 1_500, connections: 32 },
  run: (opts) => runMesh(opts, 'conn-per-request'),
};
