// What the hold scripts (idle connections, soak) share: flags, a scratch bench context, /proc samples of a process.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../../common/duration.js';
import { type BenchContext, withBenchContext } from '../harness/bench-context.js';
import { parseProcStat, parseVmRssKb } from '../harness/proc-stat.js';

/** `--name value` flags of a hold script, with defaults. */
export function flag(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

export const durationFlag = (argv: readonly string[], name: string, fallback: string): number => parseDuration(flag(argv, name, fallback));

export interface ProcSample {
  readonly rssKb: number;
  readonly fds: number;
  readonly cpuTicks: number;
}

/** VmRSS, open file descriptors (/proc/<pid>/fd) and utime+stime of one process; null once it has exited. */
export function sampleProcess(pid: number): ProcSample | null {
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return { rssKb: parseVmRssKb(readFileSync(`/proc/${pid}/status`, 'utf8')), fds: readdirSync(`/proc/${pid}/fd`).length, cpuTicks: stat.utimeTicks + stat.stimeTicks };
  } catch {
    return null;
  }
}

/** The soft `ulimit -n` of a process (Max open files), or null. */
export function openFilesLimit(pid: number | 'self' = 'self'): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Runs `fn` in a bench context (PKI, process group) over a scratch dir removed afterwards; logs to stderr. */
export async function withHoldContext<T>(name: string, fn: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const workDir = await mkdtemp(join(tmpdir(), `tessera-hold-${name}-`));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const opts = { durationMs: 0, warmupMs: 0, connections: 0, rounds: 1, workDir, log, progress: () => undefined, signal: abort.signal };
  try {
    return await withBenchContext(opts, {}, fn);
  } finally {
    if (!process.argv.includes('--keep-work-dir')) await rm(workDir, { recursive: true, force: true });
    else log(`work dir kept: ${workDir}`);
  }
}

/**
 * Opens `count` connections with `open` (true: it stays open), `inFlight` at a time, until done or `signal` aborts;
 * `progress` is told every 2,000.
 */
export async function openMany(count: number, inFlight: number, open: () => Promise<boolean>, signal: AbortSignal | undefined, progress: (opened: number, failed: number) => void = () => undefined): Promise<{ opened: number; failed: number }> {
  let opened = 0;
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count && !signal?.aborted) {
        next++;
        if (await open()) opened++;
        else failed++;
        if ((opened + failed) % 2_000 === 0) progress(opened, failed);
      }
    }),
  );
  return { opened, failed };
}

export async function writeJson(file: string | null, value: unknown): Promise<void> {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (file) await writeFile(file, text);
  else process.stdout.write(text);
}
