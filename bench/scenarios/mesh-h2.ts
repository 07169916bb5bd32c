// Scenario `mesh-h2`: the mesh comparison with HTTP/2 (h2c) load from h2load in front of each pair, when installed.
import { type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { H2_STREAMS, describeLoad, measureLoadVariant } from '../harness/load-variant.js';
import type { MeasuredProcess } from '../harness/measure-window.js';
import type { BenchScenario, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { startNodeFloorPair } from '../peers/node-floor-pair.js';
import { type PairHandle, startApp, startHaproxyPair, startNginxPair, startTesseraPair } from '../peers/topology.js';
import { pairVariant } from './mesh.js';
import { failureNotes, pairHeadlines, pairSummaryRows } from './pair-summary.js';

const DIRECT = 'direct app (h2c)';
const TESSERA = 'tessera pair (h2c in, h2 over mTLS, h2c app)';
const NGINX = 'nginx pair (h2c in, h1 over mTLS)';
const HAPROXY = 'haproxy pair (h2c in, h2 over mTLS)';
/** node:http2 on every leg and none of a sidecar's work (harness/children/node-h2-floor.ts): Node's own cost. */
const FLOOR = 'node http2 floor pair (h2c in, h2 over mTLS, h2c app)';

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true, haproxy: true }, async (ctx) => {
    const clk = ctx.clockTicksPerSecond;
    const h2load = ctx.binaries.h2load;
    const skipAll = (reason: string): RoundVariant[] => [DIRECT, TESSERA, NGINX, HAPROXY, FLOOR].map((name) => ({ name, run: async () => ({ skipped: reason }) }));
    let variants: RoundVariant[];
    if (!h2load || !ctx.binaries.nginx) {
      const reason = !h2load ? 'h2load not installed (apt-get install nghttp2-client)' : 'nginx not installed (the h2c app)';
      ctx.notes.push(`every variant skipped: ${reason}`);
      variants = skipAll(reason);
    } else {
      opts.progress(0, 'starting apps and proxy pairs');
      // The pairs reach the app over HTTP/1.1; the direct baseline needs an h2c listener of its own.
      const app = await startApp(ctx.env);
      const h2App = await startApp(ctx.env, { http2: true, name: 'app-h2c' });
      const h2 = (pair: PairHandle, procs: MeasuredProcess[]) => (_round: number, tick: (f: number) => void) =>
        measureLoadVariant(opts, clk, { port: pair.entryPort, mode: 'h2', h2load, measured: procs, upstreamConnections: () => pair.upstreamConnections() }, tick);
      variants = [
        { name: DIRECT, run: (_r, tick) => measureLoadVariant(opts, clk, { port: h2App.port, mode: 'h2', h2load, measured: [{ role: 'app', pid: h2App.process.pid }] }, tick) },
        // Tessera's http2 listeners carry h2 end to end (h2c → h2 over mTLS → h2c): its app is the h2c one.
        await pairVariant(ctx, h2App, TESSERA, () => startTesseraPair(ctx.env, h2App.port, { name: 'tessera-h2', protocol: 'http2' }), h2),
        await pairVariant(ctx, app, NGINX, () => startNginxPair(ctx.env, app.port, { http2In: true }), h2),
        ctx.binaries.haproxy ? await pairVariant(ctx, app, HAPROXY, () => startHaproxyPair(ctx.env, app.port, { http2: true }), h2) : { name: HAPROXY, run: async () => ({ skipped: 'haproxy not installed' }) },
        await pairVariant(ctx, h2App, FLOOR, () => startNodeFloorPair(ctx.env, h2App.port, 'http2'), h2),
      ];
    }
    const measurements = await runRounds(opts, variants, describeLoad);
    const names = variants.map((v) => v.name);
    const summaryOpts = { variants: names, peerBaselines: [NGINX, HAPROXY], direct: DIRECT };
    return scenarioResult(ctx, 'mesh-h2', {
      measurements,
      summary: pairSummaryRows(measurements, summaryOpts),
      headlines: [
        ...pairHeadlines(measurements, TESSERA, summaryOpts),
        // How far Tessera is above Node's own HTTP/2 cost, and where that stands against the peers.
        ...pairHeadlines(measurements, TESSERA, { variants: names, peerBaselines: [FLOOR] }),
        ...pairHeadlines(measurements, FLOOR, { variants: names, peerBaselines: [NGINX, HAPROXY] }),
      ],
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        `Load: h2load, h2c with prior knowledge, ${Math.max(1, Math.round(opts.connections / H2_STREAMS))} connections × ${H2_STREAMS} concurrent streams (the same ${opts.connections} requests in flight as the HTTP/1.1 mesh scenario). h2load reports no percentiles here: latency is its mean.`,
        'nginx has no HTTP/2 upstream: its pair carries HTTP/1.1 over pooled mTLS. HAProxy multiplexes h2 over one mTLS connection. nginx and HAProxy reach the app over HTTP/1.1.',
        'Tessera: both listeners are configured `protocol: http2`: h2c from the load, h2 multiplexed over one mTLS session between the proxies, h2c to the app (the same nginx h2c listener the direct baseline uses, so its app CPU is not comparable with the peers\' HTTP/1.1 app).',
        '"node http2 floor pair": a measuring stick, not a proxy (harness/children/node-h2-floor.ts): two Node processes with the Tessera pair\'s Node flags and the Tessera pair\'s shape (h2c in, one h2 session over mTLS with a client certificate required, one h2c session to the same app), each stream opened again with its method, path and authority, bodies piped, the answer\'s status and headers passed back. No authorization, header rules, XFCC, deadlines, retries, trailers, metrics or access log: what node:http2 itself costs. Tessera\'s ratio to it is what Tessera\'s work adds on this path.',
      ],
      options: { h2Streams: H2_STREAMS },
    });
  });
}

export const meshH2Scenario: BenchScenario = {
  name: 'mesh-h2',
  summary: 'The mesh comparison with HTTP/2 (h2c) load from h2load: Tessera vs nginx (h2→h1) and HAProxy (h2 end to end) pairs',
  defaults: { rounds: 5, warmupMs: 1_000, durationMs: 3_000, connections: 32 },
  run,
};
