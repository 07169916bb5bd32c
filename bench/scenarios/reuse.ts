// Scenario `reuse`: a new client connection per request vs keep-alive, through the Tessera and nginx pairs, and
// mTLS straight to the server side (a full handshake per request): what connection pooling saves.
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { SERVER_DNS } from '../harness/bench-pki.js';
import { type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { type LoadMode, type LoadVariantSpec, describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { formatRatio, formatSpread, perRoundRatios, spread, valuesOf } from '../harness/stats.js';
import { type PairHandle, startApp, startNginxPair, startTesseraPair } from '../peers/topology.js';
import { pairVariant } from './mesh.js';
import { failureNotes } from './pair-summary.js';

interface VariantInfo {
  readonly name: string;
  readonly pair: 'tessera' | 'nginx';
  readonly mode: LoadMode;
  /** mTLS from the load generator straight to the server-side proxy (no client-side proxy, no pool). */
  readonly direct: boolean;
}

export const REUSE_VARIANTS: readonly VariantInfo[] = [
  { name: 'tessera pair, keep-alive', pair: 'tessera', mode: 'keep-alive', direct: false },
  { name: 'tessera pair, new conn per request', pair: 'tessera', mode: 'conn-per-request', direct: false },
  { name: 'nginx pair, keep-alive', pair: 'nginx', mode: 'keep-alive', direct: false },
  { name: 'nginx pair, new conn per request', pair: 'nginx', mode: 'conn-per-request', direct: false },
  { name: 'tessera server side, mTLS conn per request', pair: 'tessera', mode: 'conn-per-request', direct: true },
  { name: 'nginx server side, mTLS conn per request', pair: 'nginx', mode: 'conn-per-request', direct: true },
];

/** CPU of the proxy sides a variant runs through: both for a pair, the server alone for mTLS straight to it. */
const proxyCpuMetric = (v: VariantInfo) => (v.direct ? 'cpuUsPerReqServer' : 'cpuUsPerReqProxies');

export function reuseSummary(ms: readonly Measurement[], variants: readonly VariantInfo[] = REUSE_VARIANTS): Measurement[] {
  return variants.map((v): Measurement => {
    const rows = ms.filter((m) => m['variant'] === v.name);
    const measured = rows.filter((m) => typeof m['skipped'] !== 'string');
    if (measured.length === 0) return { variant: v.name, 'req/s': 'skipped (see notes)' };
    const s = (k: string) => spread(valuesOf(ms, v.name, k));
    const keepAlive = variants.find((x) => x.pair === v.pair && x.mode === 'keep-alive' && !x.direct)!;
    const peer = variants.find((x) => x.pair === 'nginx' && x.mode === v.mode && x.direct === v.direct)!;
    const cpu = proxyCpuMetric(v);
    return {
      variant: v.name,
      'req/s': formatSpread(s('reqPerSec')),
      'p50 / p99 ms': `${formatSpread(s('p50Ms'))} / ${formatSpread(s('p99Ms'))}`,
      'CPU µs/req client': formatSpread(s('cpuUsPerReqClient')),
      'CPU µs/req server': formatSpread(s('cpuUsPerReqServer')),
      'app CPU µs/req': formatSpread(s('cpuUsPerReqApp')),
      // mTLS straight to the server side is compared with the server side alone under keep-alive.
      'CPU ÷ same pair keep-alive': v === keepAlive ? '1' : formatRatio(spread(perRoundRatios(ms, v.name, keepAlive.name, cpu))),
      'CPU ÷ nginx, same mode': v === peer ? '1' : formatRatio(spread(perRoundRatios(ms, v.name, peer.name, cpu))),
      'upstream TLS conns warm-up / measured': v.direct ? '– (no pool)' : `${formatSpread(s('upstreamConnsWarmup'))} / ${formatSpread(s('upstreamConnsMeasured'))}`,
      'failed requests': rows.reduce((a, m) => a + Number(m['errors'] ?? 0) + Number(m['non2xx'] ?? 0), 0),
    };
  });
}

function headlines(ms: readonly Measurement[]): string[] {
  const out: string[] = [];
  const med = (name: string, k: string) => spread(valuesOf(ms, name, k))?.median;
  for (const pair of ['tessera', 'nginx'] as const) {
    const ka = REUSE_VARIANTS.find((v) => v.pair === pair && v.mode === 'keep-alive')!;
    const cpr = REUSE_VARIANTS.find((v) => v.pair === pair && v.mode === 'conn-per-request' && !v.direct)!;
    const direct = REUSE_VARIANTS.find((v) => v.pair === pair && v.direct)!;
    if (med(ka.name, 'reqPerSec') === undefined) continue;
    const conns = med(cpr.name, 'upstreamConnsMeasured');
    const r = formatRatio(spread(perRoundRatios(ms, cpr.name, ka.name, 'cpuUsPerReqProxies')));
    const d = formatRatio(spread(perRoundRatios(ms, direct.name, ka.name, 'cpuUsPerReqServer')));
    out.push(
      `${pair} pair: a new client connection per request costs ${r} the proxies' CPU per request of keep-alive` +
        `${conns === undefined ? '' : conns === 0 ? ', with 0 upstream TLS connections opened in the measured window (the pool survives)' : `, with ${conns} upstream TLS connections opened in the measured window (the upstream pool does not survive new client connections)`}; ` +
        `a full mTLS handshake per request straight to the server side costs ${d} its keep-alive CPU per request.`,
    );
  }
  return out;
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true }, async (ctx) => {
    const clk = ctx.clockTicksPerSecond;
    opts.progress(0, 'starting app and proxy pairs');
    const app = await startApp(ctx.env);
    const clientTls = {
      cert: ctx.client.chainPem,
      key: ctx.client.keyPem,
      ca: await readFile(ctx.pki.rootFile, 'utf8'),
    };
    const secureContext = createSecureContext({ cert: clientTls.cert, key: clientTls.key, ca: clientTls.ca });
    const variantFor = (info: VariantInfo) => (pair: PairHandle, procs: { role: string; pid: number }[]) => (_round: number, tick: (f: number) => void) => {
      const spec: LoadVariantSpec = info.direct
        ? { port: pair.serverPort, mode: info.mode, measured: procs.filter((p) => p.role !== 'client'), tls: { ...clientTls, secureContext, servername: SERVER_DNS } }
        : { port: pair.entryPort, mode: info.mode, measured: procs, upstreamConnections: () => pair.upstreamConnections() };
      return measureLoadVariant(opts, clk, spec, tick);
    };
    // One pair of each kind serves all its variants.
    const pairs = new Map<string, Promise<PairHandle>>();
    const startPair = (kind: 'tessera' | 'nginx') => {
      if (!pairs.has(kind)) pairs.set(kind, kind === 'tessera' ? startTesseraPair(ctx.env, app.port) : startNginxPair(ctx.env, app.port));
      return pairs.get(kind)!;
    };
    const variants: RoundVariant[] = [];
    for (const info of REUSE_VARIANTS) {
      if (info.pair === 'nginx' && !ctx.binaries.nginx) {
        variants.push({ name: info.name, run: async () => ({ skipped: 'nginx not installed' }) });
        continue;
      }
      const v = await pairVariant(ctx, app, info.name, () => startPair(info.pair), variantFor(info));
      variants.push(v);
    }
    const measurements = await runRounds(opts, variants, describeLoad);
    return scenarioResult(ctx, 'reuse', {
      measurements,
      summary: reuseSummary(measurements),
      headlines: headlines(measurements),
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        `Keep-alive: autocannon, ${opts.connections} connections. New conn per request: ${opts.connections} concurrent loops, each opening a new connection for one request (\`Connection: close\`); through a pair that is a new plaintext connection to the client-side proxy, which keeps its pooled mTLS connections upstream.`,
        'mTLS conn per request: the load generator itself makes a full mTLS handshake (client certificate, no resumption) for every request straight to the server-side proxy: the cost of not pooling, as an L4 proxy without a pool pays it (peer-baseline section 3).',
        'Upstream TLS connections: Tessera from tessera_upstream_connections_opened_total on the client side; nginx from stub_status accepts on the server side.',
      ],
    });
  });
}

export const reuseScenario: BenchScenario = {
  name: 'reuse',
  summary: 'New connection per request vs keep-alive through the pairs, and mTLS handshake per request: req/s, latency, upstream TLS conns, CPU µs/req',
  defaults: { rounds: 5, warmupMs: 1_000, durationMs: 2_000, connections: 32 },
  run,
};
