// The door to V8's memory-reducing collection, and the two runtime readings that say when to use it.
//
// Why a door at all: V8 grows the young generation to `--max-semi-space-size` under start-up and load allocation,
// and its own memory reducer is meant to give that back once a process goes quiet. In a quiet Node 24 sidecar it
// never does: with no collection after start-up it keeps judging the allocation rate by start-up's and waits for
// ever (`--trace-memory-reducer`: "high alloc" every 8 s), so an idle proxy holds ~15 MB of empty young space.
// `gc()` (--expose-gc) and `v8.setFlagsFromString` collect without reducing; the inspector's collectGarbage is a
// memory-reducing collection (LowMemoryNotification). An in-process inspector session opens no port.
import { getHeapSpaceStatistics } from 'node:v8';

/** One memory-reducing full collection; resolves when it is done. */
export type HeapTrim = () => Promise<void>;

/** The door, or undefined where this Node was built without the inspector (then nothing is trimmed). */
export async function openHeapTrim(): Promise<HeapTrim | undefined> {
  let inspector: typeof import('node:inspector');
  try {
    inspector = await import('node:inspector');
  } catch {
    return undefined;
  }
  return () =>
    new Promise<void>((resolve, reject) => {
      const session = new inspector.Session();
      try {
        session.connect();
      } catch (e) {
        reject(e);
        return;
      }
      // Disconnecting inside the reply's callback blocks the thread for good (Node 24): leave the callback first.
      session.post('HeapProfiler.collectGarbage', (err) =>
        setImmediate(() => {
          session.disconnect();
          if (err) reject(err);
          else resolve();
        }),
      );
    });
}

/** Bytes the young generation holds from the OS now (both semi-spaces' committed pages). */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
}

/**
 * The process's resident memory now. Not V8's heap size: after a burst V8 collects the old generation by itself and
 * its heap figures fall, but the freed pages stay resident (pooled by V8, kept by malloc) until a memory-reducing
 * collection; RSS is what the kubelet and the OOM killer count.
 */
export function residentBytes(): number {
  return process.memoryUsage.rss();
}

/**
 * A reader of the CPU this process used (all its threads, user and system) as a share (0–1) of one CPU over the wall
 * time since its previous call (the first call: since it was made). CPU time, not the event loop's utilisation:
 * on a contended machine a waiting-to-run loop counts as busy, so a sidecar idling at 0.6 % of a CPU read 1–3 %
 * and was never quiet enough to trim.
 */
export function cpuShareReader(nowMs: () => number): () => number {
  let lastCpu = process.cpuUsage();
  let lastMs = nowMs();
  return () => {
    const cpu = process.cpuUsage();
    const ms = nowMs();
    const usedMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    const wallMs = ms - lastMs;
    lastCpu = cpu;
    lastMs = ms;
    // No time passed (or the clock stepped back): no reading to trust, so not quiet.
    return wallMs > 0 ? usedMs / wallMs : 1;
  };
}
