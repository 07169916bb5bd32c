// The one authorization gate of every listener (sidecar inbound, edge): evaluate the policy snapshot in force for
// this workload, and count the decision and the audit-mode decision behind it, so no listener forgets either.
import { evaluate } from '../../../common/policy/evaluate.js';
import type { AuthzRequest, Decision } from '../../../common/policy/policy-types.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';

export type AuthorizeDeps = Pick<ListenerDeps, 'policies' | 'identity' | 'metrics' | 'nowMs'>;

/** The decision for `request` against the destination this proxy serves, counted in tessera_authz_decisions_total. */
export function authorize(d: AuthorizeDeps, request: Omit<AuthzRequest, 'destination' | 'nowMs'>): Decision {
  const decision = evaluate(d.policies.current, { ...request, destination: d.identity.current!.id, nowMs: d.nowMs() });
  d.metrics.authzDecision(decision.allowed, decision.mode, decision.policy);
  if (decision.audit) d.metrics.authzDecision(decision.audit.allowed, 'audit', decision.audit.policy);
  return decision;
}
