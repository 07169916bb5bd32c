// The primary's PolicyHolder with workers: the same holder, which also tells the worker pool about every new
// snapshot (a policy source writes it exactly as in one process; the workers receive it whole).
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { PolicySnapshot } from '../../../common/policy/policy-snapshot.js';
import { PolicyHolder } from '../authz/policy-holder.js';

export class ObservedPolicyHolder extends PolicyHolder {
  #onChange: () => void = () => {};

  /** `fn` runs after every new snapshot. */
  observe(fn: () => void): void {
    this.#onChange = fn;
  }

  override setPolicies(policies: readonly AuthorizationPolicy[], grants: readonly BreakGlassGrant[] = [], version?: string): void {
    super.setPolicies(policies, grants, version);
    this.#onChange();
  }

  override setSnapshot(snapshot: PolicySnapshot): void {
    super.setSnapshot(snapshot);
    this.#onChange();
  }
}
