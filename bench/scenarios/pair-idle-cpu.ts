// Idle CPU of the proxies in pair scenarios: after the rounds, one shared window without load over every pair still
// running, per side, carried into the pair's rows (like the idle RSS) and shown as a summary cell, a headline and a
// note that says what "idle" means here (after load, pooled connections open).
import { type IdleCpuResult, measureIdleCpu } from '../harness/idle-cpu.js';
import type { Measurement, ScenarioOptions } from '../harness/scenario.js';
import { formatNumber, spread, valuesOf } from '../harness/stats.js';

export const IDLE_CPU_COLUMN = 'idle CPU ms/s client / server';
/** No load for this long before the window: the last round's closes, timers and GC run out. */
export const IDLE_SETTLE_MS = 2_000;
/** Long enough for slow timers (file-watch polls, sweeps every few seconds) to fire several times. */
export const IDLE_WINDOW_MS = 10_000;

/** A pair still running after the rounds: its two sides' root pids. */
export interface IdlePair {
  readonly name: string;
  readonly client: number;
  readonly server: number;
}

/** The two fields every row of a pair carries, in ms of CPU per second (null when a side could not be measured). */
export type IdleCpuFields = { readonly cpuIdleMsPerSecClient: number | null; readonly cpuIdleMsPerSecServer: number | null };

export interface PairsIdleCpu {
  readonly fields: ReadonlyMap<string, IdleCpuFields>;
  readonly result: IdleCpuResult;
}

// 0.1 µs of CPU per second: an nginx worker asleep in epoll_wait runs a few µs per 10 s, or nothing at all.
const round4 = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 1e4) / 1e4);

/** Settles, then reads every pair's client and server side at the start and the end of one shared window. */
export async function measurePairsIdle(
  opts: Pick<ScenarioOptions, 'signal' | 'log' | 'progress'>,
  clockTicksPerSecond: number,
  pairs: readonly IdlePair[],
  window = { settleMs: IDLE_SETTLE_MS, windowMs: IDLE_WINDOW_MS },
): Promise<PairsIdleCpu> {
  opts.progress(1, `idle CPU: ${window.settleMs / 1000} s settle, then one ${window.windowMs / 1000} s window without load`);
  const targets = pairs.flatMap((p) => [
    { id: `${p.name}\u0000client`, pid: p.client },
    { id: `${p.name}\u0000server`, pid: p.server },
  ]);
  const result = await measureIdleCpu(targets, { ...window, clockTicksPerSecond, ...(opts.signal ? { signal: opts.signal } : {}) });
  const fields = new Map<string, IdleCpuFields>();
  for (const p of pairs) {
    const side = (s: string) => round4(result.readings.get(`${p.name}\u0000${s}`)?.msPerSec);
    fields.set(p.name, { cpuIdleMsPerSecClient: side('client'), cpuIdleMsPerSecServer: side('server') });
  }
  return { fields, result };
}

/** Every measured row of a pair gets the pair's idle figures (a skipped row stays as it is). */
export function withIdleCpu(ms: readonly Measurement[], fields: ReadonlyMap<string, IdleCpuFields>): Measurement[] {
  return ms.map((m) => {
    const f = fields.get(String(m['variant']));
    return f && typeof m['skipped'] !== 'string' ? { ...m, ...f } : m;
  });
}

const hasIdleCpu = (ms: readonly Measurement[]) => ms.some((m) => typeof m['cpuIdleMsPerSecClient'] === 'number' || typeof m['cpuIdleMsPerSecServer'] === 'number');

function sides(ms: readonly Measurement[], v: string): string | null {
  const med = (k: string) => {
    const s = spread(valuesOf(ms, v, k));
    return s ? formatNumber(s.median) : null;
  };
  const [c, s] = [med('cpuIdleMsPerSecClient'), med('cpuIdleMsPerSecServer')];
  return c === null && s === null ? null : `${c ?? '–'} / ${s ?? '–'}`;
}

/** The summary cell "9.1 / 8.7" (client / server); "–" for a row without; nothing when no row was measured idle. */
export function idleCpuCells(ms: readonly Measurement[], v: string): Record<string, string> {
  if (!hasIdleCpu(ms)) return {};
  return { [IDLE_CPU_COLUMN]: sides(ms, v) ?? '–' };
}

/** One line over every pair measured idle, in display order. */
export function idleCpuHeadline(ms: readonly Measurement[], variants: readonly string[], windowMs: number): string[] {
  const parts = variants.map((v) => [v, sides(ms, v)] as const).filter((x): x is readonly [string, string] => x[1] !== null);
  if (parts.length === 0) return [];
  return [
    `Idle CPU after the rounds, ms of CPU per second client / server side (one ${formatNumber(windowMs / 1000)} s window without load, pooled connections open; 10 ms/s = 1 % of a core): ${parts.map(([v, s]) => `${v} ${s}`).join('; ')}.`,
  ];
}

/** How the idle figures were taken, with what ran beside them and anything that weakens them. */
export function idleCpuNote(r: IdleCpuResult): string {
  const readings = [...r.readings.values()];
  const ticks = readings.some((x) => x.source === 'ticks');
  const lost = readings.reduce((a, x) => a + x.threadsLost, 0);
  const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
  return (
    `Idle CPU ("${IDLE_CPU_COLUMN}") — idle after load: pooled connections open. After the last round, every pair still running, no load for ${formatNumber(r.settleMs / 1000)} s, then ONE ${formatNumber(r.windowMs / 1000)} s window shared by all pairs; ` +
    `CPU = ns on CPU of every thread of each side's process and its children (first field of /proc/<pid>/task/<tid>/schedstat; utime+stime tick at 10 ms, too coarse here), end − start, ÷ the window: ms of CPU per second (10 ms/s = 1 % of a core). ` +
    `The pairs keep their upstream (proxy-to-proxy) connections pooled or multiplexed, with their keepalive pings, so this is a sidecar between bursts, not a freshly started one. Machine busy ${pct(r.machineBusy)} of all CPUs during the window (steal ${pct(r.machineSteal)}).` +
    (ticks ? ' schedstat was unreadable for some process: its figure comes from utime+stime ticks (10 ms resolution).' : '') +
    (lost > 0 ? ` ${lost} thread(s) exited during the window; their CPU after the start is missing.` : '')
  );
}
