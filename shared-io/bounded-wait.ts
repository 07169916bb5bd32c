// "Wait for this, but at most that long": the shape of every shutdown and flush with a deadline. The timer is
// cleared as soon as the work settles, so a finished wait leaves nothing scheduled behind it.
import type { Timers } from './timers.js';

/**
 * Resolves `true` when `work` settles within `ms`, `false` when the bound passed first (the work goes on; callers
 * decide what to give up). A rejection of `work` within the bound is passed on.
 */
export async function settledWithin(work: Promise<unknown>, ms: number, timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>): Promise<boolean> {
  let bound: unknown;
  const late = new Promise<false>((resolve) => {
    bound = timers.setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    timers.clearTimeout(bound);
  }
}
