// spiffe_sequence as a function of shared state: one number per distinct key set, kept in the store's meta table
// under the keys' digest. Every replica on one database serves the same number for the same keys (a peer reaching
// them through one Service sees no false rollback), a new key set gets the next value of one shared counter (so a
// change always raises it), and a restart finds its number again. A read-only CA (a Secret replicas share, each with
// a store of its own) has no shared counter: its number is read from the Secret's certificates instead.
import { createHash } from 'node:crypto';
import type { MetaStore } from '../store/store-contract.js';
import type { LoadedAuthority } from './authority.js';

/** The counter new key sets draw from (the same key as before this scheme, so numbers keep growing on upgrade). */
const COUNTER = 'spiffe.bundle_sequence';
const PER_KEYS = 'spiffe.bundle_sequence.keys.';

/** The digest of a document's `keys`, independent of their order (replicas may list equal keys differently). */
export function bundleKeysDigest(keys: readonly unknown[]): string {
  const canonical = keys.map((k) => JSON.stringify(k)).sort();
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** The sequence for a key set: the one already given to it, or the next counter value, claimed once for all. */
export function sharedBundleSequence(meta: MetaStore): (keysDigest: string) => Promise<number> {
  return async (digest) => {
    const key = PER_KEYS + digest;
    const held = await meta.get(key);
    if (held !== undefined) return Number(held);
    // Two replicas seeing new keys at once each draw a number; the first claim wins and both serve it.
    return Number(await meta.claim(key, String(await meta.increment(COUNTER))));
  };
}

/** What a read-only CA's sequence is read from: its authorities and the removals its ca-state.json records. */
export interface FixedCaView {
  current(): { readonly authorities: readonly LoadedAuthority[] };
  removedHistory(): readonly { readonly removedAtMs: number }[] | undefined;
}

/**
 * The sequence on a read-only CA: the newest NotBefore, in Unix seconds, of the Secret's certificates the bundle's keys
 * come from (each authority's root, and an offline root's intermediates: its derived JWT keys come from theirs), or of
 * an authority's creation or a removal its ca-state.json records, whichever is later. Not the intermediates a replica mints itself under a root
 * key, which differ per replica. Every replica loading the Secret serves the same number, and a CA change rolled out
 * (a new authority, a renewed plug-in intermediate, an authority removed) raises it: per-replica counters served 1 on
 * one replica and 2 on the other, and every fresh pod started at 1 again, which federated peers refused as a rollback
 * for good (audit 62d F1); a removal that kept the number let a replayed older document bring the removed root back
 * at a peer (audit 62h F5). Larger than any counter value served before, so an upgrade raises it too. Keys that change
 * without a certificate (the Secret's jwt-signing-key files) keep the number: a peer takes an equal sequence with
 * other keys (federation.ts).
 */
export function secretBundleSequence(ca: FixedCaView): () => Promise<number> {
  return async () => {
    let newestMs = 0;
    for (const a of ca.current().authorities) {
      // Its creation as ca-state.json records it too: a root's NotBefore is backdated a minute, and an authority
      // prepared within a minute of a removal kept the removal's number with other keys (audit 62k F3).
      newestMs = Math.max(newestMs, a.root.cert.validFromDate.getTime(), a.record.createdAtMs);
      if (a.root.key) continue;
      for (const i of a.intermediates) newestMs = Math.max(newestMs, i.cert.validFromDate.getTime());
    }
    for (const r of ca.removedHistory() ?? []) newestMs = Math.max(newestMs, r.removedAtMs);
    return Math.floor(newestMs / 1000);
  };
}
