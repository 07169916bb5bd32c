// Which live SVIDs a serial ban reaches: those renewed from the banned one, transitively (whoever held the banned key
// may have renewed before the ban). Every row recorded now carries its renewal tree (chain) and its depth in it, so
// they are the live rows of the banned SVID's chain deeper than it: one indexed read, with no row between them needed
// (the inventory's prune deletes every row past `inventory.keep`, middle ones included). Within one chain that also
// reaches a second branch deeper than the banned SVID (two holders renewing one SVID: a cloned key, exactly what a
// ban is for); fail-closed, and intended.
//
// Rows recorded before chains were (chain ''), and a serial no row has (a `--force` ban): the renewal links
// (attested_as x509svid:<serial>) are followed hop by hop until rows with a chain, whose chain is then read from
// there, and so is the chain named by each serial walked (the one its renewals began, for an SVID without a chain;
// the whole chain, for an attested SVID whose row went). A pruned row between two old ones ends that walk; old rows
// all expire within a TTL and `inventory.keep` of the upgrade.
//
// Each SVID found is banned (`ban`) before the next read, and a chain is read again until a read finds nothing new: a
// renewal recorded after the last read renews an SVID whose ban was stored before it, and meets that ban in its own
// check after signing (Issuer.sign, Revocations.checkRenewal).

import type { InventoryStore, IssuedSvidRow } from '../store/store-contract.js';

/** SVIDs a serial ban reaches at most (reads and bans), however many a chain holds. */
const MAX_LINEAGE = 10_000;

/**
 * Calls `ban` for every SVID unexpired at `nowMs` renewed from `root` (`rootRow`: its inventory row, absent when it has
 * none), transitively, at most MAX_LINEAGE SVIDs looked at.
 */
export async function reachRenewals(
  inventory: Pick<InventoryStore, 'renewalsOf' | 'liveInChain'>,
  root: string,
  rootRow: IssuedSvidRow | undefined,
  nowMs: number,
  ban: (row: IssuedSvidRow) => Promise<void>,
): Promise<void> {
  const seen = new Set([root]);
  /** Per chain, the depth below which it was read: a read from deeper in it finds nothing more. */
  const read = new Map<string, number>();
  const readChain = async (chain: string, depth: number): Promise<void> => {
    if ((read.get(chain) ?? Number.POSITIVE_INFINITY) <= depth) return;
    read.set(chain, depth);
    while (seen.size <= MAX_LINEAGE) {
      const fresh = (await inventory.liveInChain(chain, depth, nowMs, MAX_LINEAGE)).filter((r) => !seen.has(r.serial));
      if (fresh.length === 0) return;
      for (const r of fresh) {
        seen.add(r.serial);
        await ban(r);
      }
    }
  };
  if (rootRow?.chain !== undefined && rootRow.depth !== undefined) return readChain(rootRow.chain, rootRow.depth);
  // The walk of old links: breadth first, each origin's renewals read after its own ban was stored.
  const queue = [root];
  while (queue.length > 0 && seen.size <= MAX_LINEAGE) {
    const origin = queue.shift()!;
    // A renewal of an SVID recorded without a chain (or not recorded) began the chain named by its serial: read
    // whole, it needs no link into it.
    await readChain(origin, 0);
    for (const r of await inventory.renewalsOf(origin)) {
      if (seen.has(r.serial)) continue;
      seen.add(r.serial);
      // An expired one renews nothing and no proxy accepts it; what was renewed from it is still followed.
      if (r.notAfterMs > nowMs) await ban(r);
      if (r.chain !== undefined && r.depth !== undefined) await readChain(r.chain, r.depth);
      else queue.push(r.serial);
    }
  }
}
