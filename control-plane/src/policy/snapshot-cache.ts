// The config snapshots of one published version, one per SPIFFE ID: every Config/Watch stream of an ID gets the
// same content, so it is built once and shared (message object and encoding included). A publish replaces the whole
// cache (whole-or-nothing, as snapshots are). What all IDs share is prepared once per version (SnapshotParts, and
// the policy index carried over while the policy set is the same), so an ID's first build costs what selects it:
// outside audits saw each open rebuild everything (39b), then each distinct ID rebuild the whole policy set (40a:
// 100 IDs under a 2,000-rule policy held /ready for 3-4 s).
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { type BuiltSnapshot, type SnapshotEncoder, type SnapshotInputs, SnapshotParts } from './config-snapshot.js';
import type { PolicyIndex } from './policy-index.js';

/** IDs cached at most; past it the cache starts again empty (IDs with open streams bound it far below this). */
export const MAX_CACHED_IDS = 10_000;

export interface SnapshotCacheOptions {
  readonly encode?: SnapshotEncoder;
  /** The previous version's cache: its policy index is reused if the policy set is the same array. */
  readonly previous?: SnapshotCache;
  /** A snapshot was built for one ID: how many policies and grants it looked at. */
  readonly onBuild?: (examined: number) => void;
}

export class SnapshotCache {
  readonly #inputs: () => SnapshotInputs;
  readonly #encode: SnapshotEncoder | undefined;
  readonly #reuse: PolicyIndex | undefined;
  readonly #onBuild: ((examined: number) => void) | undefined;
  #parts: SnapshotParts | undefined;
  readonly #byId = new Map<string, BuiltSnapshot>();

  /** `inputs` is read once, at the first snapshot asked for (the publish's view of the world). */
  constructor(inputs: () => SnapshotInputs, opts: SnapshotCacheOptions = {}) {
    this.#inputs = inputs;
    this.#encode = opts.encode;
    this.#reuse = opts.previous?.policies;
    this.#onBuild = opts.onBuild;
  }

  /** The policy index of this version, once prepared. */
  get policies(): PolicyIndex | undefined {
    return this.#parts?.policies ?? this.#reuse;
  }

  /** The snapshot of `id` at this version, built at most once while no grant it was built with expires. */
  get(id: SpiffeId, nowMs: number): BuiltSnapshot {
    const key = id.toString();
    const hit = this.#byId.get(key);
    if (hit && nowMs < hit.validUntilMs) return hit;
    this.#parts ??= new SnapshotParts(this.#inputs(), nowMs, { ...(this.#encode ? { encode: this.#encode } : {}), ...(this.#reuse ? { reuse: this.#reuse } : {}) });
    const built = this.#parts.build(id, nowMs);
    this.#onBuild?.(built.examined);
    if (this.#byId.size >= MAX_CACHED_IDS && !hit) this.#byId.clear();
    this.#byId.set(key, built);
    return built;
  }

  /** The ID has no open stream left: its snapshot is not kept for nobody. */
  forget(spiffeId: string): void {
    this.#byId.delete(spiffeId);
  }
}
