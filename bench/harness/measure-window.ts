// One measured window: CPU time, RSS and PSS of every measured process tree (and machine busy/steal) around a load run.
import { performance } from 'node:perf_hooks';
import { cpuShares, readCpuTimes, samplePssKb, sampleTree } from './proc-stat.js';

/** A process measured under a role name such as "client", "server" or "app". */
export interface MeasuredProcess {
  readonly role: string;
  readonly pid: number;
}

export interface WindowSample {
  readonly wallMs: number;
  /** CPU time (user + system, all threads, all descendants) per role during the window, in µs. */
  readonly cpuUs: Readonly<Record<string, number>>;
  /** RSS per role at the end of the window, in MB. */
  readonly rssMb: Readonly<Record<string, number>>;
  /** PSS per role at the end of the window, in MB (NaN when smaps_rollup could not be read). */
  readonly pssMb: Readonly<Record<string, number>>;
  /** Share of all CPUs busy, and stolen by the hypervisor, during the window (noise indicators). */
  readonly machineBusy: number;
  readonly machineSteal: number;
  /** CPU of this harness process (the in-process load generator), in µs. */
  readonly harnessCpuUs: number;
}

export async function measureWindow<T>(procs: readonly MeasuredProcess[], clockTicksPerSecond: number, run: () => Promise<T>): Promise<{ result: T; sample: WindowSample }> {
  const usPerTick = 1e6 / clockTicksPerSecond;
  const before = procs.map((p) => sampleTree(p.pid));
  const machineBefore = readCpuTimes();
  const harnessBefore = process.cpuUsage();
  const t0 = performance.now();
  const result = await run();
  const wallMs = performance.now() - t0;
  const harness = process.cpuUsage(harnessBefore);
  const machineAfter = readCpuTimes();
  const after = procs.map((p) => sampleTree(p.pid));
  // After the CPU readings: reading smaps_rollup costs the reader, and some time.
  const pss = procs.map((p) => samplePssKb(p.pid));
  const cpuUs: Record<string, number> = {};
  const rssMb: Record<string, number> = {};
  const pssMb: Record<string, number> = {};
  procs.forEach((p, i) => {
    // A tree that lost a process during the window (it exited) cannot be measured: NaN, reported as null.
    const lost = before[i]!.pids.some((pid) => !after[i]!.pids.includes(pid));
    cpuUs[p.role] = lost ? Number.NaN : (after[i]!.cpuTicks - before[i]!.cpuTicks) * usPerTick;
    rssMb[p.role] = after[i]!.rssKb / 1024;
    pssMb[p.role] = pss[i] === null || pss[i] === undefined ? Number.NaN : pss[i] / 1024;
  });
  const shares = cpuShares(machineBefore, machineAfter);
  return { result, sample: { wallMs, cpuUs, rssMb, pssMb, machineBusy: shares.busy, machineSteal: shares.steal, harnessCpuUs: harness.user + harness.system } };
}
