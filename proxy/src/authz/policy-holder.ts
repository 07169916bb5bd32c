// The policy snapshot in force. Replaced whole by a policy source; read per request, so a new snapshot applies
// to the next request on every connection, not only to new connections.
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { PolicySnapshot } from '../../../common/policy/policy-snapshot.js';

export class PolicyHolder {
  #snapshot: PolicySnapshot;
  #loaded = false;
  readonly #defaultAction: 'deny' | 'allow';

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
    this.#snapshot = grants.length > 0 ? base.withBreakGlass([...grants], version) : base;
    this.#loaded = true;
  }

  setSnapshot(snapshot: PolicySnapshot): void {
    this.#snapshot = snapshot;
    this.#loaded = true;
  }
}
