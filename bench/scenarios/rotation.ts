// Scenario `rotation`: steady keep-alive load through a pair while both SVIDs are replaced every few seconds —
// failed requests (must be 0), the latency blip, and how soon a fresh handshake gets the new certificate.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import { runAutocannon } from '../harness/autocannon-load.js';
import { type BenchContext, type RoundVariant, runRounds, scenarioResult, withBenchContext } from '../harness/bench-context.js';
import { CLIENT_ID, type LeafFiles, type MintedLeaf, SERVER_DNS, SERVER_ID } from '../harness/bench-pki.js';
import { LatencyHistogram } from '../harness/latency-histogram.js';
import { pickupTimes, probeLoop, swapLeafFiles } from '../harness/rotation-probe.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { spread } from '../harness/stats.js';
import { type PairHandle, type TesseraPairHandle, startApp, startNginxPair, startTesseraPair } from '../peers/topology.js';
import { sumMetric } from '../peers/tessera-config.js';
import { pairVariant } from './mesh.js';
import { failureNotes } from './pair-summary.js';
import { rotationHeadlines, rotationSummary } from './rotation-summary.js';

/** "Every few seconds": the first swap 1 s into the window, then every 2 s while 0.5 s of window remains. */
export const FIRST_ROTATION_MS = 1_000;
export const ROTATION_EVERY_MS = 2_000;
/** Responses completing within this long after a swap count as "near a rotation". */
export const NEAR_ROTATION_MS = 1_000;

export function rotationOffsets(durationMs: number): number[] {
  const out: number[] = [];
  for (let t = FIRST_ROTATION_MS; t <= durationMs - 500; t += ROTATION_EVERY_MS) out.push(t);
  return out;
}

interface RotationTarget {
  readonly kind: 'tessera' | 'nginx';
  readonly files: { readonly client: LeafFiles; readonly server: LeafFiles };
}

const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

function measureRotation(ctx: BenchContext, target: RotationTarget, pair: PairHandle, probeContext: ReturnType<typeof createSecureContext>): RoundVariant['run'] {
  const o = ctx.opts;
  const offsets = rotationOffsets(o.durationMs);
  return async (_round, tick) => {
    // Mint before the window: signing in JS takes milliseconds that would stall the load generator mid-run.
    const next: { client: MintedLeaf; server: MintedLeaf }[] = [];
    for (const _ of offsets) next.push({ client: await ctx.pki.mint(CLIENT_ID), server: await ctx.pki.mint(SERVER_ID) });
    const url = `http://127.0.0.1:${pair.entryPort}/`;
    if (o.warmupMs > 0) await runAutocannon({ url, connections: o.connections, durationMs: o.warmupMs, ...(o.signal ? { signal: o.signal } : {}) });
    const tessera = target.kind === 'tessera' ? (pair as TesseraPairHandle) : null;
    const rotationsMetric = async () => {
      if (!tessera) return null;
      try {
        const [c, s] = await Promise.all([tessera.metrics('client'), tessera.metrics('server')]);
        const a = sumMetric(c, 'tessera_svid_rotations_total');
        const b = sumMetric(s, 'tessera_svid_rotations_total');
        return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
      } catch {
        return null;
      }
    };
    const metricBefore = await rotationsMetric();
    const near = new LatencyHistogram();
    const steady = new LatencyHistogram();
    const all = new LatencyHistogram();
    const rotations: { atMs: number; serialHex: string }[] = [];
    let stopProbe!: () => void;
    const stop = new Promise<void>((resolve) => {
      stopProbe = resolve;
    });
    const probe = probeLoop(pair.serverPort, probeContext, SERVER_DNS, 200, stop);
    const t0 = performance.now();
    const swaps = offsets.map(
      (at, i) =>
        new Promise<void>((resolve) => {
          setTimeout(async () => {
            try {
              await swapLeafFiles(target.files.client, next[i]!.client);
              await swapLeafFiles(target.files.server, next[i]!.server);
              // nginx re-reads certificates only on reload (SIGHUP to the master: new workers, old ones drain).
              if (target.kind === 'nginx') for (const pid of [pair.server.pid, pair.client.pid]) process.kill(pid, 'SIGHUP');
              rotations.push({ atMs: performance.now(), serialHex: next[i]!.server.serialHex });
            } finally {
              resolve();
            }
          }, at);
        }),
    );
    const load = await runAutocannon({
      url,
      connections: o.connections,
      durationMs: o.durationMs,
      ...(o.signal ? { signal: o.signal } : {}),
      onTick: (ms) => tick((o.warmupMs + ms) / (o.warmupMs + o.durationMs)),
      onResponse: (status, latencyMs, atMs) => {
        if (status < 200 || status >= 300) return;
        all.recordMs(latencyMs);
        (rotations.some((r) => atMs >= r.atMs && atMs < r.atMs + NEAR_ROTATION_MS) ? near : steady).recordMs(latencyMs);
      },
    });
    await Promise.all(swaps);
    // Give the probe a moment past the window to see the last certificate.
    await new Promise((r) => setTimeout(r, 600));
    stopProbe();
    const plog = await probe;
    const metricAfter = await rotationsMetric();
    const pickups = pickupTimes(rotations, plog.seen);
    const seenPickups = pickups.filter((x): x is number => x !== null);
    return {
      reqPerSec: Math.round(load.reqPerSec),
      requests: load.ok2xx,
      errors: load.errors,
      non2xx: load.non2xx,
      rotations: rotations.length,
      probesOk: plog.ok,
      probesFailed: plog.failed,
      probeError: plog.firstError,
      newCertSeen: seenPickups.length,
      pickupMsMax: seenPickups.length ? Math.round(Math.max(...seenPickups)) : null,
      pickupMsMedian: seenPickups.length ? Math.round(spread(seenPickups)!.median) : null,
      p50Ms: r3(all.quantileMs(0.5)),
      p99Ms: r3(all.quantileMs(0.99)),
      p99SteadyMs: r3(steady.quantileMs(0.99)),
      p99NearRotationMs: r3(near.quantileMs(0.99)),
      maxMs: r3(all.summary().maxMs),
      rotationMetricDelta: metricBefore !== null && metricAfter !== null ? metricAfter - metricBefore : null,
      errorSample: load.errorSamples[0] ?? null,
      windowMs: Math.round(performance.now() - t0),
    };
  };
}

function describe(m: Measurement): string {
  if (typeof m['skipped'] === 'string') return `skipped: ${m['skipped']}`;
  const failed = Number(m['errors']) + Number(m['non2xx']);
  return `${m['rotations']} rotations, ${failed} failed requests, ${m['probesFailed']} failed probes, p99 steady ${m['p99SteadyMs']} ms / near rotation ${m['p99NearRotationMs']} ms, new cert after ≤ ${m['pickupMsMax'] ?? '–'} ms`;
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  return withBenchContext(opts, { nginx: true }, async (ctx) => {
    opts.progress(0, 'starting app and proxy pairs');
    const app = await startApp(ctx.env);
    const rootPem = await readFile(ctx.pki.rootFile, 'utf8');
    const probeContext = createSecureContext({ cert: ctx.client.chainPem, key: ctx.client.keyPem, ca: rootPem });
    // Each pair rotates its own copies of the identity files.
    const tesseraFiles = { client: await ctx.pki.writeLeaf('rot-tessera-client', CLIENT_ID), server: await ctx.pki.writeLeaf('rot-tessera-server', SERVER_ID) };
    const nginxFiles = { client: await ctx.pki.writeLeaf('rot-nginx-client', CLIENT_ID), server: await ctx.pki.writeLeaf('rot-nginx-server', SERVER_ID) };
    const variants: RoundVariant[] = [
      await pairVariant(ctx, app, 'tessera pair', () => startTesseraPair(ctx.env, app.port, { ...tesseraFiles, name: 'rot-tessera' }), (pair) =>
        measureRotation(ctx, { kind: 'tessera', files: tesseraFiles }, pair, probeContext),
      ),
      ctx.binaries.nginx
        ? await pairVariant(ctx, app, 'nginx pair (reload on SIGHUP)', () => startNginxPair(ctx.env, app.port, { ...nginxFiles, name: 'rot-nginx' }), (pair) =>
            measureRotation(ctx, { kind: 'nginx', files: nginxFiles }, pair, probeContext),
          )
        : { name: 'nginx pair (reload on SIGHUP)', run: async () => ({ skipped: 'nginx not installed' }) },
    ];
    const measurements = await runRounds(opts, variants, describe);
    return scenarioResult(ctx, 'rotation', {
      measurements,
      summary: rotationSummary(measurements, variants.map((v) => v.name)),
      headlines: rotationHeadlines(measurements, variants.map((v) => v.name), opts),
      notes: [
        ...ctx.notes,
        ...failureNotes(measurements),
        `Each measured window (${opts.durationMs} ms, after ${opts.warmupMs} ms warm-up): keep-alive load with autocannon (${opts.connections} connections) through the pair; both SVIDs (client and server side, new keys, same CA) are replaced ${FIRST_ROTATION_MS} ms into the window and then every ${ROTATION_EVERY_MS} ms, by renaming new files over the old (cert, then key).`,
        'Tessera picks the files up by itself (identity.files is watched); nginx needs a reload, sent as SIGHUP to each master. HAProxy is left out: a certificate reload needs its master-worker mode and a hitless-reload setup.',
        `"Near rotation" = responses completing within ${NEAR_ROTATION_MS} ms after a swap. A probe opens a fresh mTLS connection (plus one request) to the server side every 200 ms: a failed probe is a failed request, and the time until it first sees the new serial is the pickup time.`,
      ],
    });
  });
}

export const rotationScenario: BenchScenario = {
  name: 'rotation',
  summary: 'Steady load while SVIDs rotate every 2 s: failed requests (must be 0), latency blip, new-certificate pickup time',
  defaults: { rounds: 5, warmupMs: 1_000, durationMs: 6_000, connections: 32 },
  run,
};
