// Which rows of the SVID inventory a prune deletes, for both stores (each gives the statements). The inventory is
// also the renewal lineage: a renewal's row names the SVID it renewed (attested_as x509svid:<serial>), and a serial
// ban walks those links down, through expired rows, to the live SVIDs renewed from the banned one, at most `reach`
// renewals deep (revocations.ts). A row between a banned serial and a live SVID, deleted, would cut that walk.
//
// Every row recorded now carries its renewal tree (chain) and its depth in it: an SVID renewed from it, transitively,
// is in the same chain, that many renewals deeper. So the walk from X reaches a live K only if K is in X's chain at
// most `reach` deeper, through rows of that chain in between, each as deep as X or deeper. A row expired at the
// cutoff therefore goes when its chain holds no row unexpired at the cutoff that is at most `reach` deeper: no kept
// SVID (a live one included) can be reached through it or from it. One that stays answers as before: the rows a
// walk from it passes on the way to a live SVID all stay.
//
// Rows recorded before (chain ''): their links cannot be measured. A renewal of one begins a chain named by its
// serial (depth 1 below it). They all stay while one of them is unexpired at the cutoff, or a chain grown from one
// holds a kept row at most `reach` deep (the walk from an old row may pass through them into it); after that no walk
// from one of them reaches a live SVID, and they all go. None are written any more, so this happens once.

import type { InventoryPrune } from './store-contract.js';

export interface KeptChain {
  /** '' for rows recorded without one. */
  readonly chain: string;
  /** The least depth among the chain's rows unexpired at the cutoff (null for rows recorded without one). */
  readonly minDepth: number | null;
}

/** The statements of one store; each DELETE removes at most `limit` rows, all expired at `cutoffMs` or before. */
export interface InventoryPruneStatements {
  /** The chains holding a row unexpired at `cutoffMs`, in the store's (bytewise) order of chain names. */
  keptChains(cutoffMs: number): Promise<KeptChain[]>;
  /** Rows whose chain is after `after` and before `before` (undefined: no bound), both excluded. */
  deleteBetween(after: string, before: string | undefined, cutoffMs: number, limit: number): Promise<number>;
  /** Rows of `chain` shallower than `belowDepth`. */
  deleteShallow(chain: string, belowDepth: number, cutoffMs: number, limit: number): Promise<number>;
  /** Whether any row was recorded without a chain. */
  anyWithoutChain(): Promise<boolean>;
  /** Whether the row of `serial` was recorded without a chain (the chain named by it grew from an old row). */
  withoutChain(serial: string): Promise<boolean>;
  deleteWithoutChain(cutoffMs: number, limit: number): Promise<number>;
}

/** Deletes what `p` allows, statement by statement; returns how many rows went. */
export async function pruneInventory(q: InventoryPruneStatements, p: InventoryPrune): Promise<number> {
  let left = p.maxRows;
  /** Runs one DELETE until it takes less than a batch (nothing more of its kind) or the prune's rows are spent. */
  const drain = async (run: (limit: number) => Promise<number>): Promise<void> => {
    while (left > 0) {
      const limit = Math.min(p.batch, left);
      const n = await run(limit);
      left -= n;
      if (n < limit) return;
    }
  };
  const kept = await q.keptChains(p.cutoffMs);
  const chains = kept.filter((k) => k.chain !== '');
  // Chains with no kept row, whole: those named between two kept ones (and before the first, after the last).
  let after = '';
  for (const k of chains) {
    await drain((limit) => q.deleteBetween(after, k.chain, p.cutoffMs, limit));
    after = k.chain;
  }
  await drain((limit) => q.deleteBetween(after, undefined, p.cutoffMs, limit));
  // Kept chains, down to `reach` above their shallowest kept row (the chain of a long-lived workload keeps that many).
  for (const k of chains) {
    if (k.minDepth !== null && k.minDepth - p.reach > 0) await drain((limit) => q.deleteShallow(k.chain, k.minDepth! - p.reach, p.cutoffMs, limit));
  }
  if (left > 0 && (await q.anyWithoutChain()) && !(await oldRowsNeeded(q, kept, p.reach))) await drain((limit) => q.deleteWithoutChain(p.cutoffMs, limit));
  return p.maxRows - left;
}

/** One of the rows recorded without a chain is kept, or a chain grown from one keeps a row at most `reach` deep. */
async function oldRowsNeeded(q: InventoryPruneStatements, kept: readonly KeptChain[], reach: number): Promise<boolean> {
  for (const k of kept) {
    if (k.chain === '') return true;
    if (k.minDepth !== null && k.minDepth <= reach && (await q.withoutChain(k.chain))) return true;
  }
  return false;
}
