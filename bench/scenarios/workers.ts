// Scenario `workers`: scaling of the Tessera pair from one process to `workers: 2` (docs/workers.md), same run,
// keep-alive HTTP/1.1 load: req/s and CPU µs per request of each side (a side's CPU includes its workers), and
// how the server side's requests were shared among its workers.
import { type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { MeasuredProcess } from '../harness/measure-window.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { formatRatio, formatSpread, perRoundRatios, spread, valuesOf } from '../harness/stats.js';
import { sumMetric } from '../peers/tessera-config.js';
import { type PairHandle, type TesseraPairHandle, startApp, startTesseraPair } from '../peers/topology.js';
import { pairVariant } from './mesh.js';
import { failureNotes } from './pair-summary.js';

const DIRECT = 'direct app';
const ONE = 'tessera 1 + 1 (one process each)';
const SERVER2 = 'tessera 1 + 2 workers';
const BOTH2 = 'tessera 2 + 2 workers';
const BOTH2_H1 = 'tessera 2 + 2 workers, HTTP/1.1 transport';
const SERVER2_S4 = 'tessera 1 + 2 workers, 4 sessions per peer';

const PAIRS: readonly { readonly name: string; readonly client: number; readonly server: number; readonly multiplex?: boolean; readonly sessionsPerPeer?: number }[] = [
  { name: ONE, client: 1, server: 1 },
  { name: SERVER2, client: 1, server: 2 },
  { name: SERVER2_S4, client: 1, server: 2, sessionsPerPeer: 4 },
  { name: BOTH2, client: 2, server: 2 },
  { name: BOTH2_H1, client: 2, server: 2, multiplex: false },
];

function summaryRows(ms: readonly Measurement[]): Measurement[] {
  return [DIRECT, ...PAIRS.map((p) => p.name)].map((v) => {
    const s = (k: string) => spread(valuesOf(ms, v, k));
    const vsOne = (k: string) => (v === DIRECT ? '–' : v === ONE ? '1' : formatRatio(spread(perRoundRatios(ms, v, ONE, k))));
    return {
      variant: v,
      'req/s': formatSpread(s('reqPerSec')),
      'req/s ÷ 1 + 1': vsOne('reqPerSec'),
      'p50 / p99 ms': `${formatSpread(s('p50Ms'))} / ${formatSpread(s('p99Ms'))}`,
      'CPU µs/req client': formatSpread(s('cpuUsPerReqClient')),
      'CPU µs/req server': formatSpread(s('cpuUsPerReqServer')),
      'CPU ÷ 1 + 1': vsOne('cpuUsPerReqProxies'),
    };
  });
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true, haproxy: false }, async (ctx) => {
    const clk = ctx.clockTicksPerSecond;
    opts.progress(0, 'starting app and proxy pairs');
    const app = await startApp(ctx.env);
    const load = (pair: PairHandle, procs: MeasuredProcess[]) => (round: number, tick: (f: number) => void) =>
      measureLoadVariant(opts, clk, { port: pair.entryPort, mode: 'keep-alive', measured: procs, upstreamConnections: () => pair.upstreamConnections() }, tick, round === 0);
    const started = new Map<string, TesseraPairHandle>();
    const variants: RoundVariant[] = [{ name: DIRECT, run: (r, tick) => measureLoadVariant(opts, clk, { port: app.port, mode: 'keep-alive', measured: [{ role: 'app', pid: app.process.pid }] }, tick, r === 0) }];
    for (const p of PAIRS) {
      const start = async () => {
        const pair = await startTesseraPair(ctx.env, app.port, {
          name: `tessera-${p.client}-${p.server}${p.multiplex === false ? '-h1' : ''}${p.sessionsPerPeer ? `-s${p.sessionsPerPeer}` : ''}`,
          workers: { client: p.client, server: p.server },
          ...(p.multiplex === false ? { multiplex: false } : {}),
          ...(p.sessionsPerPeer ? { sessionsPerPeer: p.sessionsPerPeer } : {}),
        });
        started.set(p.name, pair);
        return pair;
      };
      variants.push(await pairVariant(ctx, app, p.name, start, load));
    }
    const measurements = await runRounds(opts, variants, describeLoad);
    // Which server worker served what, over the whole run (the primary's per-worker series).
    const shares: string[] = [];
    for (const p of PAIRS.filter((x) => x.server > 1)) {
      const text = await started.get(p.name)?.metrics('server').catch(() => '');
      if (!text) continue;
      const per = Array.from({ length: p.server }, (_, w) => sumMetric(text, 'tessera_worker_requests_total', (l) => l.includes(`worker="${w}"`)) ?? 0);
      const total = per.reduce((a, b) => a + b, 0);
      shares.push(`${p.name}: server workers served ${per.map((n) => `${total ? Math.round((100 * n) / total) : 0} %`).join(' / ')} of ${total} requests.`);
    }
    const one = spread(valuesOf(measurements, ONE, 'reqPerSec'))?.median;
    const best = Math.max(...PAIRS.slice(1).map((p) => spread(valuesOf(measurements, p.name, 'reqPerSec'))?.median ?? 0));
    return scenarioResult(ctx, 'workers', {
      measurements,
      summary: summaryRows(measurements),
      headlines: one ? [`Best req/s with workers ÷ one process: ${(best / one).toFixed(2)}× (${ctx.machine['cpuCount'] ?? '?'} CPUs shared by load generator, app and both proxies).`] : [],
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        ...shares,
        'CPU of a side is its primary plus its workers (the process tree). Load: autocannon, keep-alive HTTP/1.1.',
        'SO_REUSEPORT spreads connections, not requests: with the multiplexed transport a client worker carries all its requests on one session, so a server with more workers than the client has sessions leaves workers idle (see the shares above); the HTTP/1.1 transport spreads its pooled connections. `transport.sessionsPerPeer: 4` keeps four sessions to the peer and opens each stream on the least loaded: the kernel hashes the four connections over the server workers (with 2 workers, all four land on one with probability 1/8).',
      ],
    });
  });
}

export const workersScenario: BenchScenario = {
  name: 'workers',
  summary: 'Scaling of the Tessera pair from one process per side to `workers: 2` (req/s, CPU µs/req, share per worker)',
  defaults: { rounds: 3, primeMs: 3_000, warmupMs: 1_000, durationMs: 3_000, connections: 32 },
  run,
};
