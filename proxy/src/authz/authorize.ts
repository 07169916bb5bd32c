// The one authorization gate of every listener (sidecar inbound, edge): evaluate the policy snapshot in force for
// this workload, and count the decision and the audit-mode decision behind it, so no listener forgets either.
// Denials (and audit-mode would-denies) also go to the denial tally of the fleet report; an allow costs it nothing.
import { evaluate } from '../../../common/policy/evaluate.js';
import type { AuthzRequest, Decision } from '../../../common/policy/policy-types.js';
import type { ListenerDeps } from '../listeners/listener-deps.js';

export type AuthorizeDeps = Pick<ListenerDeps, 'policies' | 'identity' | 'metrics' | 'nowMs' | 'denials'>;

/** The decision for `request` against the destination this proxy serves, counted in tessera_authz_decisions_total. */
export function authorize(d: AuthorizeDeps, request: Omit<AuthzRequest, 'destination' | 'nowMs'>): Decision {
  const nowMs = d.nowMs();
  // Fields named, not spread: this runs per request.
  const r = request;
  const decision = evaluate(d.policies.current, { source: r.source, destination: d.identity.current!.id, port: r.port, method: r.method, path: r.path, protocol: r.protocol, nowMs });
  d.metrics.authzDecision(decision.allowed, decision.mode, decision.policy);
  if (!decision.allowed) d.denials?.record(decision.policy, 'deny', request.source, nowMs);
  const audit = decision.audit;
  if (audit) {
    d.metrics.authzDecision(audit.allowed, 'audit', audit.policy);
    if (!audit.allowed) d.denials?.record(audit.policy, 'audit', request.source, nowMs);
  }
  return decision;
}
