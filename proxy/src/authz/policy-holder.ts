// The policy snapshot in force. Replaced whole by a policy source; read per request, so a new snapshot applies
// to the next request on every connection, not only to new connections. Observed like the other holders (a
// `workers: N` primary sends every new snapshot to its workers).
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { PolicySnapshot } from '../../../common/policy/policy-snapshot.js';

export class PolicyHolder {
  #snapshot: PolicySnapshot;
  #loaded = false;
  readonly #defaultAction: 'deny' | 'allow';
  readonly #listeners = new Set<(snapshot: PolicySnapshot) => void>();

  constructor(defaultAction: 'deny' | 'allow') {
    this.#defaultAction = defaultAction;
    this.#snapshot = PolicySnapshot.create([], { defaultAction });
  }

  get current(): PolicySnapshot {
    return this.#snapshot;
  }

  /** False until the first snapshot arrived (from the policies dir or the control plane). */
  get loaded(): boolean {
    return this.#loaded;
  }

  setPolicies(policies: readonly AuthorizationPolicy[], grants: readonly BreakGlassGrant[] = [], version?: string): void {
    const base = PolicySnapshot.create(policies, { defaultAction: this.#defaultAction, ...(version ? { version } : {}) });
    this.#install(grants.length > 0 ? base.withBreakGlass([...grants], version) : base);
  }

  setSnapshot(snapshot: PolicySnapshot): void {
    this.#install(snapshot);
  }

  /** `listener` runs after every new snapshot (every set, even one equal to the last); returns its unsubscribe. */
  subscribe(listener: (snapshot: PolicySnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #install(snapshot: PolicySnapshot): void {
    this.#snapshot = snapshot;
    this.#loaded = true;
    for (const l of this.#listeners) l(snapshot);
  }
}
