// Precise CPU of a process tree from /proc/<pid>/task/<tid>/schedstat (bench/harness/task-cpu.ts) and the idle
// window over it (bench/harness/idle-cpu.ts), read from real child processes: a child that spins grows, a sleeping
// child stays flat, a vanished pid reads as null; and the per-thread arithmetic when threads come and go.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { measureIdleCpu, msPerSecond } from '../../../bench/harness/idle-cpu.js';
import { type ProcessCpu, type TreeCpu, cpuBetween, parseSchedstatRunNs, processCpuNs, readProcessCpu, readTreeCpu } from '../../../bench/harness/task-cpu.js';
import type { SupervisedProcess } from '../../../shared-io/process-supervisor.js';
import { startTestProcess } from '../../helpers/ready-process.js';

/** A pid above the kernel's maximum (pid_max ≤ 2^22): never a live process. */
const NO_SUCH_PID = 2 ** 22 + 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// On SIGUSR2, spins until it has used 200 ms of CPU by its own count (not wall time: a busy machine only
// stretches the spin), then says "spun".
const SPINNER = `
process.on('SIGUSR2', () => {
  const t0 = process.cpuUsage();
  for (;;) { const u = process.cpuUsage(t0); if (u.user + u.system >= 200000) break; }
  console.log('spun');
});
setInterval(() => {}, 1 << 30);
console.log('ready');
`;
const SLEEPER = `setInterval(() => {}, 1 << 30); console.log('ready');`;

let spinner: SupervisedProcess;
let sleeper: SupervisedProcess;

beforeAll(async () => {
  const start = (name: string, code: string) => startTestProcess({ name, command: process.execPath, args: ['-e', code], ready: { line: 'ready' }, readyTimeoutMs: 10_000 });
  [spinner, sleeper] = await Promise.all([start('schedstat-spinner', SPINNER), start('schedstat-sleeper', SLEEPER)]);
  // Let start-up work (module loading, the first GC) run out before any reading.
  await sleep(300);
});

afterAll(async () => {
  await Promise.all([spinner?.stop(), sleeper?.stop()]);
});

test('parseSchedstatRunNs reads the first field (ns on CPU), null for anything else', () => {
  expect(parseSchedstatRunNs('54548226 13205726 123\n')).toBe(54_548_226);
  expect(parseSchedstatRunNs('')).toBeNull();
  expect(parseSchedstatRunNs('x 1 2')).toBeNull();
});

describe('real /proc', () => {
  test('a child that spins 200 ms of CPU grows by at least 150 ms, read per thread from schedstat', async () => {
    const before = readProcessCpu(spinner.pid);
    expect(before?.source).toBe('schedstat');
    // Node has a main thread plus libuv and V8 platform threads.
    expect(before!.threads.size).toBeGreaterThan(1);
    const ns0 = processCpuNs(spinner.pid)!;
    process.kill(spinner.pid, 'SIGUSR2');
    const deadline = Date.now() + 10_000;
    while (!spinner.stdout().includes('spun') && Date.now() < deadline) await sleep(20);
    expect(spinner.stdout()).toContain('spun');
    const ns1 = processCpuNs(spinner.pid)!;
    expect(ns1 - ns0).toBeGreaterThanOrEqual(150e6);
  });

  test('a sleeping child stays nearly flat (under 25 ms of CPU over half a second)', async () => {
    const a = processCpuNs(sleeper.pid)!;
    await sleep(500);
    const b = processCpuNs(sleeper.pid)!;
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThanOrEqual(a);
    expect(b - a).toBeLessThan(25e6);
  });

  test("a tree holds its children: this test process's tree holds both children", () => {
    const tree = readTreeCpu(process.pid)!;
    const pids = tree.processes.map((p) => p.pid);
    expect(pids).toEqual(expect.arrayContaining([process.pid, spinner.pid, sleeper.pid]));
    expect(tree.processes.every((p) => p.source === 'schedstat')).toBe(true);
  });

  test('a vanished pid reads as null, never a throw (and a child that exited is gone too)', async () => {
    expect(readProcessCpu(NO_SUCH_PID)).toBeNull();
    expect(processCpuNs(NO_SUCH_PID)).toBeNull();
    expect(readTreeCpu(NO_SUCH_PID)).toBeNull();
    const brief = await startTestProcess({ name: 'schedstat-brief', command: process.execPath, args: ['-e', SLEEPER], ready: { line: 'ready' }, readyTimeoutMs: 10_000 });
    const pid = brief.pid;
    expect(processCpuNs(pid)).not.toBeNull();
    await brief.stop();
    expect(processCpuNs(pid)).toBeNull();
  });

  test('an idle window: the sleeper near 0 ms/s, a vanished target null; an abort ends it with BENCH_ABORTED', async () => {
    const r = await measureIdleCpu(
      [
        { id: 'sleeper', pid: sleeper.pid },
        { id: 'gone', pid: NO_SUCH_PID },
      ],
      { settleMs: 50, windowMs: 500, clockTicksPerSecond: 100 },
    );
    const s = r.readings.get('sleeper')!;
    expect(s.source).toBe('schedstat');
    expect(s.msPerSec).not.toBeNull();
    expect(s.msPerSec!).toBeGreaterThanOrEqual(0);
    expect(s.msPerSec!).toBeLessThan(50);
    expect(r.readings.get('gone')!.msPerSec).toBeNull();
    expect(r.windowMs).toBe(500);
    const abort = new AbortController();
    abort.abort();
    await expect(measureIdleCpu([{ id: 'sleeper', pid: sleeper.pid }], { settleMs: 60_000, windowMs: 60_000, clockTicksPerSecond: 100, signal: abort.signal })).rejects.toMatchObject({
      code: 'TESSERA_ERR_BENCH_ABORTED',
    });
  });
});

describe('cpuBetween: threads and processes that come and go between two readings', () => {
  const proc = (pid: number, threads: [number, number][], source: ProcessCpu['source'] = 'schedstat'): ProcessCpu => ({ pid, source, threads: new Map(threads) });
  const tree = (atMs: number, ...processes: ProcessCpu[]): TreeCpu => ({ rootPid: 10, processes, atMs });

  test('a thread at both ends adds its difference; a new thread all it ran; an exited one is counted as lost', () => {
    const d = cpuBetween(
      tree(0, proc(10, [[10, 1_000], [11, 500], [12, 300]])),
      tree(2_000, proc(10, [[10, 1_600], [11, 700], [13, 50]])),
    );
    // 600 + 200 + 50; thread 12 exited
    expect(d).toEqual({ ns: 850, elapsedMs: 2_000, source: 'schedstat', threadsLost: 1, processesLost: 0 });
    expect(msPerSecond(9e6 * 2, 2_000)).toBe(9);
  });

  test('a reused thread id (count went down) adds its new count; a new child process all of its count; a lost child is counted', () => {
    const d = cpuBetween(tree(0, proc(10, [[10, 1_000]]), proc(20, [[20, 100]])), tree(1_000, proc(10, [[10, 40]]), proc(30, [[30, 70]])));
    expect(d.ns).toBe(40 + 70);
    expect(d.processesLost).toBe(1);
  });

  test('a process read from ticks at one end compares by totals, and marks the delta as ticks', () => {
    const d = cpuBetween(tree(0, proc(10, [[10, 1_000], [11, 1_000]])), tree(1_000, proc(10, [[10, 10_000_000]], 'ticks')));
    expect(d.ns).toBe(10_000_000 - 2_000);
    expect(d.source).toBe('ticks');
  });
});
