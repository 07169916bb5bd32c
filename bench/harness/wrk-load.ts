// HTTP/1.1 closed-loop load with wrk (`--load wrk`), keep-alive or a new connection per request: a C generator on
// one thread, as the independent harnesses that check these figures use, so that on a 2-core machine the load takes
// less CPU from the proxies than autocannon or the harness's own generators, which run in its Node process. The
// figures come from a Lua `done` hook that prints one JSON line (wrk's own HdrHistogram percentiles, in µs), not
// from its human-readable report.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadOutcome } from './load-outcome.js';

/** wrk counts a status below 400 as a success (the apps under test answer 200); errors are socket errors and timeouts. */
export type WrkResult = LoadOutcome;

const MARK = 'TESSERA-WRK ';

/** The Lua hook: one marked JSON line with the counts and percentiles wrk keeps. */
export const WRK_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARK}{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"minUs":%d,"maxUs":%d,"meanUs":%.1f,"p50Us":%d,"p90Us":%d,"p99Us":%d,"p999Us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
`;

/** Writes the hook into `dir` (the run's work dir) and returns its path. */
export async function writeWrkScript(dir: string): Promise<string> {
  const file = join(dir, 'wrk-report.lua');
  await writeFile(file, WRK_SCRIPT);
  return file;
}

interface WrkLine {
  readonly requests: number;
  readonly durationUs: number;
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly status: number;
  readonly timeout: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
}

/** Parses wrk's output with the hook's line in it. */
export function parseWrk(text: string): WrkResult {
  const line = text.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`unexpected wrk output (no report line): ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const w = JSON.parse(line.slice(MARK.length)) as WrkLine;
  const non2xx = w.status;
  const ok2xx = Math.max(0, w.requests - non2xx);
  const socketErrors = w.connect + w.read + w.write;
  const elapsedMs = w.durationUs / 1000;
  const samples = [
    socketErrors ? `socket errors: connect ${w.connect}, read ${w.read}, write ${w.write}` : null,
    w.timeout ? `timeouts: ${w.timeout}` : null,
    non2xx ? `status 400 or above: ${non2xx}` : null,
  ].filter((s): s is string => s !== null);
  const ms = (us: number) => us / 1000;
  return {
    elapsedMs,
    responses: w.requests,
    ok2xx,
    non2xx,
    errors: socketErrors + w.timeout,
    reqPerSec: elapsedMs > 0 ? ok2xx / (elapsedMs / 1000) : 0,
    latency: {
      count: w.requests,
      meanMs: ms(w.meanUs),
      minMs: ms(w.minUs),
      maxMs: ms(w.maxUs),
      p50Ms: ms(w.p50Us),
      p90Ms: ms(w.p90Us),
      p99Ms: ms(w.p99Us),
      p999Ms: ms(w.p999Us),
    },
    errorSamples: samples,
  };
}

function unreachable(message: string, connections: number): WrkResult {
  const nan = Number.NaN;
  const latency = { count: 0, meanMs: nan, minMs: nan, maxMs: nan, p50Ms: nan, p90Ms: nan, p99Ms: nan, p999Ms: nan };
  return { elapsedMs: 0, responses: 0, ok2xx: 0, non2xx: 0, errors: connections, reqPerSec: 0, latency, errorSamples: [message.split('\n')[0]!] };
}

export interface WrkOptions {
  readonly wrk: string;
  readonly script: string;
  readonly url: string;
  readonly connections: number;
  /** wrk counts whole seconds: rounded, at least 1 s. */
  readonly durationMs: number;
  /** `Connection: close` on every request: a new connection per request (wrk reconnects after each answer). */
  readonly close?: boolean;
  readonly signal?: AbortSignal;
}

/** One wrk run: one thread, `connections` keep-alive connections (or a new one per request), a closed loop for the duration. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const seconds = Math.max(1, Math.round(o.durationMs / 1000));
  return new Promise((resolve, reject) => {
    const child = execFile(
      o.wrk,
      ['-t1', `-c${o.connections}`, `-d${seconds}s`, '--timeout', '10s', ...(o.close ? ['-H', 'Connection: close'] : []), '-s', o.script, o.url],
      { timeout: seconds * 1000 + 30_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const said = `${stdout}${stderr}`.trim();
        // wrk checks the target once before it starts and exits when that fails: a window with no success.
        if (err && !stdout.includes(MARK) && said.startsWith('unable to connect')) return resolve(unreachable(said, o.connections));
        if (err && !stdout.includes(MARK)) return reject(new Error(`wrk failed: ${said || err.message}`));
        try {
          resolve(parseWrk(stdout));
        } catch (e) {
          reject(e);
        }
      },
    );
    o.signal?.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
  });
}
