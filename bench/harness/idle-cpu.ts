// Idle CPU of running processes: no load, a settle, then ONE window shared by every target (so all of them idle
// side by side, under the same neighbours), each read at both ends with task-cpu.ts (schedstat ns, all threads,
// children included), reported as ms of CPU per second of wall time (10 ms/s = 1 % of one core).
import { TesseraError } from '../../common/errors.js';
import { allStats, cpuShares, readCpuTimes } from './proc-stat.js';
import { type CpuSource, type TreeCpu, cpuBetween, readTreeCpu } from './task-cpu.js';

/** A process tree to measure, under an id of the caller's choosing (e.g. "nginx pair client"). */
export interface IdleTarget {
  readonly id: string;
  readonly pid: number;
}

export interface IdleCpuOptions {
  /** No load and no reading before the window: whatever the last load left (timers, GC, closes) runs out. */
  readonly settleMs: number;
  readonly windowMs: number;
  /** For the utime+stime fallback only. */
  readonly clockTicksPerSecond: number;
  /** Aborting ends the wait early and throws TESSERA_ERR_BENCH_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface IdleCpuReading {
  /** ms of CPU per second over the window; null when the tree was gone at an end or lost a process during it. */
  readonly msPerSec: number | null;
  readonly source: CpuSource;
  /** Threads that exited during the window (their CPU after the start is missing). */
  readonly threadsLost: number;
}

export interface IdleCpuResult {
  readonly settleMs: number;
  /** The window asked for; each target's own figure divides by the wall time between its two readings. */
  readonly windowMs: number;
  readonly readings: ReadonlyMap<string, IdleCpuReading>;
  /** Share of all CPUs busy, and stolen, during the window: what the neighbours did meanwhile. */
  readonly machineBusy: number;
  readonly machineSteal: number;
}

/** ns of CPU over `elapsedMs` of wall time, as ms of CPU per second. */
export function msPerSecond(ns: number, elapsedMs: number): number {
  return elapsedMs > 0 ? ns / 1e3 / elapsedMs : Number.NaN;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function readAll(targets: readonly IdleTarget[], clk: number): (TreeCpu | null)[] {
  // One listing of /proc for every tree: a listing reads every process's stat file.
  const stats = allStats();
  return targets.map((t) => readTreeCpu(t.pid, clk, stats));
}

export async function measureIdleCpu(targets: readonly IdleTarget[], o: IdleCpuOptions): Promise<IdleCpuResult> {
  const abortIfAsked = () => {
    if (o.signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
  };
  await pause(o.settleMs, o.signal);
  abortIfAsked();
  const machineBefore = readCpuTimes();
  const before = readAll(targets, o.clockTicksPerSecond);
  await pause(o.windowMs, o.signal);
  abortIfAsked();
  const after = readAll(targets, o.clockTicksPerSecond);
  const shares = cpuShares(machineBefore, readCpuTimes());
  const readings = new Map<string, IdleCpuReading>();
  targets.forEach((t, i) => {
    const b = before[i];
    const a = after[i];
    if (!b || !a) {
      readings.set(t.id, { msPerSec: null, source: 'schedstat', threadsLost: 0 });
      return;
    }
    const d = cpuBetween(b, a);
    // Like a measured window (measure-window.ts): a tree that lost a process cannot be measured.
    const msPerSec = d.processesLost > 0 ? null : msPerSecond(d.ns, d.elapsedMs);
    readings.set(t.id, { msPerSec: msPerSec !== null && Number.isFinite(msPerSec) ? msPerSec : null, source: d.source, threadsLost: d.threadsLost });
  });
  return { settleMs: o.settleMs, windowMs: o.windowMs, readings, machineBusy: shares.busy, machineSteal: shares.steal };
}
