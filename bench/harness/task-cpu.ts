// Precise on-CPU time of a process tree, in nanoseconds: the first field of /proc/<pid>/task/<tid>/schedstat (the
// scheduler's own run-time count) summed over every thread. utime+stime of /proc/<pid>/stat advance in 10 ms ticks:
// fine around a loaded window, too coarse for an idle process that spends a few ms per second.
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { allStats, type ProcStat, readStat, treePids } from './proc-stat.js';

/** 'schedstat': ns per thread; 'ticks': the fallback, utime+stime of /proc/<pid>/stat (10 ms resolution). */
export type CpuSource = 'schedstat' | 'ticks';

/** One process's CPU at one instant. */
export interface ProcessCpu {
  readonly pid: number;
  readonly source: CpuSource;
  /**
   * ns on CPU per thread id. With 'ticks', one entry under the pid: utime+stime of all threads (exited ones
   * included), converted to ns.
   */
  readonly threads: ReadonlyMap<number, number>;
}

/** The first field of a schedstat line ("<run ns> <wait ns> <timeslices>"); null when it is not a number. */
export function parseSchedstatRunNs(text: string): number | null {
  const first = text.trim().split(/\s+/)[0] ?? '';
  if (!/^\d+$/.test(first)) return null;
  return Number(first);
}

/**
 * Every thread of one process from schedstat; when no thread's schedstat can be read (a kernel without
 * CONFIG_SCHED_INFO, or no permission) utime+stime ticks instead, marked 'ticks'. null when the process is gone.
 * A thread that exits between the listing and its read is skipped: threads come and go, a sample never throws.
 */
export function readProcessCpu(pid: number, clockTicksPerSecond = 100): ProcessCpu | null {
  const threads = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    // gone, or not readable: the stat read below decides
  }
  for (const tid of tids) {
    try {
      const ns = parseSchedstatRunNs(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
      if (ns !== null) threads.set(Number(tid), ns);
    } catch {
      // the thread exited since the listing (or schedstat is not readable)
    }
  }
  if (threads.size > 0) return { pid, source: 'schedstat', threads };
  const stat = readStat(pid);
  if (!stat) return null;
  return { pid, source: 'ticks', threads: new Map([[pid, ((stat.utimeTicks + stat.stimeTicks) * 1e9) / clockTicksPerSecond]]) };
}

/** Total CPU of one process (all its threads), in ns; null when it is gone. */
export function processCpuNs(pid: number, clockTicksPerSecond = 100): number | null {
  const p = readProcessCpu(pid, clockTicksPerSecond);
  return p === null ? null : sumOf(p);
}

/** A process tree's CPU at one instant: the root and its live descendants (an nginx master and its workers). */
export interface TreeCpu {
  readonly rootPid: number;
  readonly processes: readonly ProcessCpu[];
  /** performance.now() of the reading, in ms. */
  readonly atMs: number;
}

/**
 * Reads the tree the way CPU per request counts a side (proc-stat.ts sampleTree: root + live descendants); null
 * when the root is gone. Pass `stats` to share one listing of /proc among several roots.
 */
export function readTreeCpu(rootPid: number, clockTicksPerSecond = 100, stats: readonly Pick<ProcStat, 'pid' | 'ppid'>[] = allStats()): TreeCpu | null {
  const processes: ProcessCpu[] = [];
  for (const pid of treePids(rootPid, stats)) {
    const p = readProcessCpu(pid, clockTicksPerSecond);
    if (p) processes.push(p);
  }
  if (!processes.some((p) => p.pid === rootPid)) return null;
  return { rootPid, processes, atMs: performance.now() };
}

export interface CpuDelta {
  /** ns on CPU between the two readings, over the tree. */
  readonly ns: number;
  readonly elapsedMs: number;
  /** 'ticks' when any process was read from utime+stime at either end. */
  readonly source: CpuSource;
  /** Threads read at the start and gone at the end: their CPU after the start is missing from `ns`. */
  readonly threadsLost: number;
  /** Processes of the tree at the start and gone at the end: their CPU after the start is missing from `ns`. */
  readonly processesLost: number;
}

function sumOf(p: ProcessCpu): number {
  let n = 0;
  for (const v of p.threads.values()) n += v;
  return n;
}

/**
 * CPU of a tree between two readings, thread by thread: a thread present at both ends adds its difference, a
 * thread (or process) born in between adds all it ran (it started from 0), one that exited is counted as lost.
 * A thread id whose count went down was reused by a new thread: it adds its new count.
 */
export function cpuBetween(before: TreeCpu, after: TreeCpu): CpuDelta {
  let ns = 0;
  let threadsLost = 0;
  let ticks = false;
  const prior = new Map(before.processes.map((p) => [p.pid, p]));
  for (const a of after.processes) {
    const b = prior.get(a.pid);
    if (a.source === 'ticks' || b?.source === 'ticks') ticks = true;
    if (!b) {
      ns += sumOf(a);
      continue;
    }
    if (a.source !== b.source) {
      // One end per thread, the other per process: only the totals compare.
      ns += Math.max(0, sumOf(a) - sumOf(b));
      continue;
    }
    for (const [tid, v] of a.threads) {
      const was = b.threads.get(tid);
      ns += was === undefined || v < was ? v : v - was;
    }
    for (const tid of b.threads.keys()) if (!a.threads.has(tid)) threadsLost++;
  }
  const live = new Set(after.processes.map((p) => p.pid));
  const processesLost = before.processes.filter((p) => !live.has(p.pid)).length;
  return { ns, elapsedMs: after.atMs - before.atMs, source: ticks ? 'ticks' : 'schedstat', threadsLost, processesLost };
}
