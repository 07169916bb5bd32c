// The config snapshots of one published version, one per SPIFFE ID: every Config/Watch stream of an ID gets the
// same content, so it is built once and shared (message object included, so its encoding can be shared too). A
// publish replaces the whole cache (whole-or-nothing, as snapshots are); an outside audit saw each stream open and
// each publish to each stream rebuild it, 100 opens under a 2,000-rule policy blocking the event loop for 3.3 s.
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { type BuiltSnapshot, type SnapshotInputs, buildSnapshot } from './config-snapshot.js';

/** IDs cached at most; past it the cache starts again empty (IDs with open streams bound it far below this). */
export const MAX_CACHED_IDS = 10_000;

interface Entry {
  readonly built: BuiltSnapshot;
  /** A grant in the inputs expires then: a build after it would leave it out, so the entry is stale. */
  readonly validUntilMs: number;
}

export class SnapshotCache {
  readonly #inputs: () => SnapshotInputs;
  #read: SnapshotInputs | undefined;
  readonly #byId = new Map<string, Entry>();

  /** `inputs` is read once, at the first snapshot asked for (the publish's view of the world). */
  constructor(inputs: () => SnapshotInputs) {
    this.#inputs = inputs;
  }

  /** The snapshot of `id` at this version, built at most once while no grant it was built with expires. */
  get(id: SpiffeId, nowMs: number): BuiltSnapshot {
    const key = id.toString();
    const hit = this.#byId.get(key);
    if (hit && nowMs < hit.validUntilMs) return hit.built;
    this.#read ??= this.#inputs();
    const inputs = this.#read;
    const built = buildSnapshot(inputs, id, nowMs);
    if (this.#byId.size >= MAX_CACHED_IDS && !hit) this.#byId.clear();
    this.#byId.set(key, { built, validUntilMs: nextExpiry(inputs, nowMs) });
    return built;
  }

  /** The ID has no open stream left: its snapshot is not kept for nobody. */
  forget(spiffeId: string): void {
    this.#byId.delete(spiffeId);
  }
}

function nextExpiry(inputs: SnapshotInputs, nowMs: number): number {
  let next = Number.POSITIVE_INFINITY;
  for (const g of inputs.grants) if (g.expiresAtMs > nowMs && g.expiresAtMs < next) next = g.expiresAtMs;
  return next;
}
