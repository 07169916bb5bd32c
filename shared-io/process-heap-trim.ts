// Starts a long-running process's heap trims (idle-heap-trim.ts) with their counters on the process's registry:
// the proxy, each listener worker and the control plane start it the same way once they are up.
import { Counter, type Registry } from 'prom-client';
import { cpuShareReader, openHeapTrim, residentBytes, youngGenerationBytes } from './heap-trim.js';
import { IdleHeapTrim } from './idle-heap-trim.js';
import type { Timers } from './timers.js';

export interface ProcessHeapTrimDeps {
  readonly registry: Registry;
  readonly timers: Timers;
  readonly nowMs: () => number;
  /** Only failures are logged; what was trimmed and the pause it cost are on the counters. */
  readonly log: { warn(obj: Record<string, unknown>, msg: string): void };
}

/**
 * Whether this process trims at all: `TESSERA_HEAP_TRIM=off` turns the start-up and idle trims off (operations.md,
 * "Memory at idle"), for a host that cares for start-up CPU more than idle RSS (the test suite's hundreds of process
 * starts: ~0.16 s of CPU each).
 */
export function heapTrimWanted(env: Readonly<Record<string, string | undefined>>): boolean {
  return env['TESSERA_HEAP_TRIM'] !== 'off';
}

/** Trims once (start-up) before it resolves; undefined where this Node has no inspector to ask V8 through. */
export async function startProcessHeapTrim(deps: ProcessHeapTrimDeps): Promise<{ stop(): void } | undefined> {
  const trim = await openHeapTrim();
  if (!trim) return undefined;
  const trims = new Counter({ name: 'tessera_heap_trims_total', help: 'Memory-reducing collections this process asked of V8, by cause (startup, idle).', labelNames: ['cause'], registers: [deps.registry] });
  const paused = new Counter({ name: 'tessera_heap_trim_seconds_total', help: 'Time the event loop stood still in those collections.', registers: [deps.registry] });
  const trimmer = new IdleHeapTrim({
    trim,
    timers: deps.timers,
    nowMs: deps.nowMs,
    busyShare: cpuShareReader(deps.nowMs),
    youngBytes: youngGenerationBytes,
    residentBytes,
    onTrim: (cause, ms) => {
      trims.inc({ cause });
      paused.inc(ms / 1000);
    },
    onError: (err) => deps.log.warn({ err: (err as Error).message }, 'heap trim failed'),
  });
  await trimmer.start();
  return trimmer;
}
