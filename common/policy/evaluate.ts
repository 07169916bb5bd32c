// evaluate(snapshot, request) → Decision: the pure authorization function (no I/O, no clock: time is req.nowMs).
// Order: invalid path → break-glass → DENY → ALLOW → default; audit-mode policies are judged in a second pass.
import { type CompiledPolicy, type CompiledRule, idMatcherMatches } from './compiled-policy.js';
import { normalizeHttpPath, pathBeforeEscapedDelimiter } from './normalize-path.js';
import type { DestinationPlan, PolicySnapshot } from './policy-snapshot.js';
import type { AuthzRequest, Decision, DecisionReason, PolicyMode } from './policy-types.js';

interface Outcome {
  allowed: boolean;
  policy: string | null;
  rule: number | null;
  reason: DecisionReason;
  mode: Decision['mode'];
  /** Decided by an audit-mode policy (only possible in the audit pass). */
  byAudit: boolean;
}

/** What the request offers to `to` conditions; undefined = the request has no such attribute (e.g. TCP: no path). */
interface Attributes {
  /** null: the caller has no verified SPIFFE ID; only a `from: [unauthenticated]` entry matches it. */
  readonly sourceText: string | null;
  readonly port: number | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  /** The path before an escaped "?" or "#", when it holds one: DENY rules are matched against it too. */
  readonly decodedPath: string | undefined;
}

/**
 * A `to` condition on an attribute the request does not have (a TCP connection has no method or path) never
 * lets an ALLOW rule match, and never stops a DENY rule from matching: both fail closed.
 */
function ruleMatches(rule: CompiledRule, a: Attributes, deny: boolean): boolean {
  if (!idMatcherMatches(rule.from, a.sourceText)) return false;
  if (rule.ports !== null) {
    if (a.port === undefined) {
      if (!deny) return false;
    } else if (!rule.ports.has(a.port)) return false;
  }
  if (rule.methods !== null) {
    if (a.method === undefined) {
      if (!deny) return false;
    } else if (!rule.methods.has(a.method)) return false;
  }
  if (rule.paths !== null) {
    if (a.path === undefined) {
      if (!deny) return false;
    } else if (!rule.paths.test(a.path)) return false;
  }
  return true;
}

function firstMatch(policies: readonly CompiledPolicy[], a: Attributes, deny: boolean): { p: CompiledPolicy; rule: number } | null {
  for (const p of policies) {
    for (const r of p.rules) if (ruleMatches(r, a, deny)) return { p, rule: r.index };
  }
  return null;
}

function decide(
  plan: DestinationPlan,
  defaultAction: 'deny' | 'allow',
  a: Attributes,
  nowMs: number,
  denies: readonly CompiledPolicy[],
  allows: readonly CompiledPolicy[],
): Outcome {
  // Grants never name unauthenticated callers (compileGrant refuses it), so they never match one.
  for (const g of plan.grants) {
    if (g.expiresAtMs > nowMs && idMatcherMatches(g.from, a.sourceText)) {
      return { allowed: true, policy: g.name, rule: null, reason: 'break_glass', mode: 'break-glass', byAudit: false };
    }
  }
  // An app that decodes the target and parses it again routes on the path before an escaped "?" or "#".
  const d = firstMatch(denies, a, true) ?? (a.decodedPath === undefined ? null : firstMatch(denies, { ...a, path: a.decodedPath }, true));
  if (d) return { allowed: false, policy: d.p.name, rule: d.rule, reason: 'denied_by_rule', mode: d.p.mode, byAudit: d.p.mode === 'audit' };
  if (allows.length > 0) {
    const m = firstMatch(allows, a, false);
    if (m) return { allowed: true, policy: m.p.name, rule: m.rule, reason: 'allowed_by_rule', mode: m.p.mode, byAudit: m.p.mode === 'audit' };
    const mode: PolicyMode = allows.every((p) => p.mode === 'audit') ? 'audit' : 'enforce';
    return { allowed: false, policy: null, rule: null, reason: a.sourceText === null ? 'unauthenticated' : 'no_matching_rule', mode, byAudit: mode === 'audit' };
  }
  return defaultAction === 'allow'
    ? { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default', byAudit: false }
    : { allowed: false, policy: null, rule: null, reason: 'no_policy', mode: 'default', byAudit: false };
}

/**
 * Judges one request against a snapshot. Deterministic: policies are tried in name order, rules in list order.
 * Audit-mode policies never change `allowed`; what they would decide is reported in `audit`.
 */
export function evaluate(snapshot: PolicySnapshot, req: AuthzRequest): Decision {
  const l7 = req.protocol !== 'tcp';
  let path: string | undefined;
  if (l7 && req.path !== undefined) {
    const normal = normalizeHttpPath(req.path);
    // Refused before any policy, break-glass included: such a path may mean different things to us and the app.
    if (normal === null) return { allowed: false, policy: null, rule: null, reason: 'invalid_path', mode: 'enforce' };
    path = normal;
  }
  const plan = snapshot.planFor(req.destination);
  const a: Attributes = { sourceText: req.source === null ? null : req.source.toString(), port: req.port, method: l7 ? req.method : undefined, path, decodedPath: path === undefined ? undefined : pathBeforeEscapedDelimiter(path) };
  const enforced = decide(plan, snapshot.defaultAction, a, req.nowMs, plan.enforceDeny, plan.enforceAllow);
  const decision: Decision = { allowed: enforced.allowed, policy: enforced.policy, rule: enforced.rule, reason: enforced.reason, mode: enforced.mode };
  if (plan.hasAudit) {
    const audit = decide(plan, snapshot.defaultAction, a, req.nowMs, plan.allDeny, plan.allAllow);
    const differs = audit.allowed !== enforced.allowed || audit.policy !== enforced.policy || audit.rule !== enforced.rule || audit.reason !== enforced.reason;
    if (differs || audit.byAudit) decision.audit = { allowed: audit.allowed, policy: audit.policy, rule: audit.rule, reason: audit.reason };
  }
  return decision;
}
