// The door to V8's memory-reducing collection, and the two runtime readings that say when to use it.
//
// Why a door at all: V8 grows the young generation to `--max-semi-space-size` under start-up and load allocation,
// and its own memory reducer is meant to give that back once a process goes quiet. In a quiet Node 24 sidecar it
// never does: with no collection after start-up it keeps judging the allocation rate by start-up's and waits for
// ever (`--trace-memory-reducer`: "high alloc" every 8 s), so an idle proxy holds ~15 MB of empty young space.
// `gc()` (--expose-gc) and `v8.setFlagsFromString` collect without reducing; the inspector's collectGarbage is a
// memory-reducing collection (LowMemoryNotification). An in-process inspector session opens no port.
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

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

/** Bytes the whole V8 heap holds from the OS now (every space's committed pages). */
export function heapPhysicalBytes(): number {
  return getHeapStatistics().total_physical_size;
}

/** A reader of the event loop's busy share (0–1) since its previous call (the first call: since it was made). */
export function loopBusyReader(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}
