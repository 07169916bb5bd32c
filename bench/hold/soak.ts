// Soak: a fixed request rate through the Tessera sidecar pair for a long time (default 10 min), sampling each
// proxy's RSS and open file descriptors, and reporting whether they stay flat (first vs last quarter).
// Not part of `npm test`: `node_modules/.bin/node dist/bench/hold/soak.js [--duration 10m] [--rate 200] [--json F]`.
import { runAutocannon } from '../harness/autocannon-load.js';
import { startApp, startTesseraPair } from '../peers/topology.js';
import { type ProcSample, durationFlag, flag, openFilesLimit, sampleProcess, withHoldContext, writeJson } from './hold-common.js';

interface Sample {
  readonly tSec: number;
  readonly responses: number;
  readonly client: ProcSample | null;
  readonly server: ProcSample | null;
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** First-quarter vs last-quarter means of one series; "flat" within the tolerances given. */
export function flatness(values: readonly number[], relTolerance: number, absTolerance: number): { first: number; last: number; growth: number; flat: boolean } {
  const q = Math.max(1, Math.floor(values.length / 4));
  const first = mean(values.slice(0, q));
  const last = mean(values.slice(-q));
  const growth = last - first;
  return { first: Math.round(first), last: Math.round(last), growth: Math.round(growth), flat: growth <= Math.max(absTolerance, first * relTolerance) };
}

async function main(argv: readonly string[]): Promise<void> {
  const durationMs = durationFlag(argv, 'duration', '10m');
  const warmupMs = durationFlag(argv, 'warmup', '30s');
  const sampleMs = durationFlag(argv, 'sample', '10s');
  const rateRps = Number(flag(argv, 'rate', '200'));
  const connections = Number(flag(argv, 'connections', '16'));
  const out = flag(argv, 'json', '');
  await withHoldContext('soak', async (ctx) => {
    const log = ctx.opts.log;
    const app = await startApp(ctx.env);
    const pair = await startTesseraPair(ctx.env, app.port, { authz: 'policy' });
    const url = `http://127.0.0.1:${pair.entryPort}/`;
    log(`soak: ${rateRps} req/s over ${connections} connections for ${durationMs / 1000} s after ${warmupMs / 1000} s warm-up; client pid ${pair.client.pid}, server pid ${pair.server.pid}`);
    await runAutocannon({ url, connections, durationMs: warmupMs, rateRps, signal: ctx.opts.signal! });
    const samples: Sample[] = [];
    let responses = 0;
    const t0 = Date.now();
    const take = () => samples.push({ tSec: Math.round((Date.now() - t0) / 1000), responses, client: sampleProcess(pair.client.pid), server: sampleProcess(pair.server.pid) });
    take();
    const timer = setInterval(() => {
      take();
      const s = samples.at(-1)!;
      log(`t=${s.tSec}s responses=${responses} client rss=${s.client?.rssKb} kB fds=${s.client?.fds}; server rss=${s.server?.rssKb} kB fds=${s.server?.fds}`);
    }, sampleMs);
    const load = await runAutocannon({ url, connections, durationMs, rateRps, signal: ctx.opts.signal!, onResponse: () => responses++ });
    clearInterval(timer);
    take();
    const series = (side: 'client' | 'server', key: keyof ProcSample) => samples.map((s) => s[side]?.[key] ?? 0);
    const first = samples[0]!;
    const last = samples.at(-1)!;
    const side = (name: 'client' | 'server') => {
      const cpuTicks = (last[name]?.cpuTicks ?? 0) - (first[name]?.cpuTicks ?? 0);
      return {
        alive: last[name] !== null,
        rssKb: flatness(series(name, 'rssKb'), 0.1, 4_096),
        fds: flatness(series(name, 'fds'), 0, 2),
        cpuUsPerRequest: load.ok2xx > 0 ? Math.round(((cpuTicks / ctx.clockTicksPerSecond) * 1e6) / load.ok2xx) : null,
        cpuShareOfOneCore: Number((cpuTicks / ctx.clockTicksPerSecond / (load.elapsedMs / 1000)).toFixed(3)),
      };
    };
    const client = side('client');
    const server = side('server');
    const result = {
      scenario: 'soak',
      startedAt: ctx.startedAt,
      machine: { ...ctx.machine, ulimitN: openFilesLimit() ?? 'unknown' },
      options: { durationMs, warmupMs, sampleMs, rateRps, connections },
      load: { elapsedMs: Math.round(load.elapsedMs), ok2xx: load.ok2xx, non2xx: load.non2xx, errors: load.errors, timeouts: load.timeouts, reqPerSec: Number(load.reqPerSec.toFixed(1)), latency: load.latency },
      client,
      server,
      flat: client.alive && server.alive && client.rssKb.flat && client.fds.flat && server.rssKb.flat && server.fds.flat,
      samples,
    };
    log(`soak done: ${load.ok2xx} 2xx, ${load.non2xx} non-2xx, ${load.errors} errors; client rss ${client.rssKb.first}→${client.rssKb.last} kB fds ${client.fds.first}→${client.fds.last}; server rss ${server.rssKb.first}→${server.rssKb.last} kB fds ${server.fds.first}→${server.fds.last}; flat=${result.flat}`);
    await writeJson(out || null, result);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
