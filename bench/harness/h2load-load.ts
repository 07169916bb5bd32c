// HTTP/2 load with h2load (nghttp2-client) when installed: h2c with prior knowledge, N connections × M streams.
import { execFile } from 'node:child_process';
import type { LoadOutcome } from './load-outcome.js';

/** h2load reports min/max/mean per request, no percentiles: those are NaN. */
export type H2loadResult = LoadOutcome;

function toMs(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 'ms' ? v : unit === 's' ? v * 1000 : Number.NaN;
}

/** Parses h2load's text report. */
export function parseH2load(text: string): H2loadResult {
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(text);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const time = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(text);
  if (!finished || !req || !status) throw new Error(`unexpected h2load output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const ok2xx = Number(status[1]);
  const non2xx = Number(status[2]) + Number(status[3]) + Number(status[4]);
  const elapsedMs = toMs(finished[1]!, finished[2]!);
  const nan = Number.NaN;
  return {
    elapsedMs,
    responses: ok2xx + non2xx,
    ok2xx,
    non2xx,
    errors: Number(req[5]) + Number(req[6]) + Number(req[7]),
    reqPerSec: ok2xx / (elapsedMs / 1000),
    latency: {
      count: ok2xx,
      minMs: time ? toMs(time[1]!, time[2]!) : nan,
      maxMs: time ? toMs(time[3]!, time[4]!) : nan,
      meanMs: time ? toMs(time[5]!, time[6]!) : nan,
      p50Ms: nan,
      p90Ms: nan,
      p99Ms: nan,
      p999Ms: nan,
    },
    errorSamples: [],
  };
}

export interface H2loadOptions {
  readonly h2load: string;
  readonly url: string;
  readonly connections: number;
  readonly streamsPerConnection: number;
  readonly durationMs: number;
  readonly signal?: AbortSignal;
}

export function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const seconds = Math.max(1, Math.round(o.durationMs / 1000));
  return new Promise((resolve, reject) => {
    const child = execFile(
      o.h2load,
      ['-c', String(o.connections), '-m', String(o.streamsPerConnection), '-t', '1', '-D', String(seconds), o.url],
      { timeout: o.durationMs + 30_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (err && !stdout) return reject(new Error(`h2load failed: ${stderr || err.message}`));
        try {
          resolve(parseH2load(stdout));
        } catch (e) {
          reject(e);
        }
      },
    );
    o.signal?.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
  });
}
