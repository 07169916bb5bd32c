// spiffe_sequence as a function of shared state: one number per distinct key set, kept in the store's meta table
// under the keys' digest. Every replica on one database serves the same number for the same keys (a peer reaching
// them through one Service sees no false rollback), a new key set gets the next value of one shared counter (so a
// change always raises it), and a restart finds its number again.
import { createHash } from 'node:crypto';
import type { MetaStore } from '../store/store-contract.js';

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
