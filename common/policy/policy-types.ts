// The data of caller-identity authorization: policies, break-glass grants, the request judged and the decision.
import type { SpiffeId } from '../spiffe/spiffe-id.js';

export type PolicyAction = 'ALLOW' | 'DENY';
export type PolicyMode = 'enforce' | 'audit';

/**
 * The `from` entry naming callers without a verified SPIFFE ID (plaintext on a permissive inbound listener, an edge
 * client without a certificate). No SPIFFE ID pattern matches them; only this word does. Never a SPIFFE ID.
 */
export const UNAUTHENTICATED = 'unauthenticated';

export interface PolicyRule {
  /** SPIFFE ID patterns of the callers ("*" = one segment, final "**" = one or more), or UNAUTHENTICATED. Never empty. */
  from: string[];
  /** Each present field must match; absent = any. Lists are never empty. */
  to?: { ports?: number[]; methods?: string[]; paths?: string[] };
}

export interface AuthorizationPolicy {
  name: string;
  /** ID pattern of the destination workload(s) the policy applies to. */
  selector: string;
  action: PolicyAction;
  mode: PolicyMode;
  rules: PolicyRule[];
  /** Where the policy was written, for errors and explanations. */
  source?: { file: string; line: number };
}

/** A time-bounded allow an operator opens for named callers when a policy is wrong; it overrides DENY too. */
export interface BreakGlassGrant {
  id: string;
  /** ID pattern of the destination(s). */
  to: string;
  /** ID patterns of the callers. */
  from: string[];
  /** The grant applies while expiresAtMs > request.nowMs. */
  expiresAtMs: number;
  reason: string;
  createdBy?: string;
  createdAtMs?: number;
}

export interface AuthzRequest {
  /**
   * The caller's verified SPIFFE ID; null when the caller is not authenticated (plaintext on a permissive inbound
   * listener, an edge client without a SPIFFE ID): only a `from` entry UNAUTHENTICATED matches it.
   */
  source: SpiffeId | null;
  destination: SpiffeId;
  port?: number;
  method?: string;
  /** The raw request target path (normalized before matching; the query string is ignored). */
  path?: string;
  protocol: 'http' | 'grpc' | 'tcp';
  nowMs: number;
}

/** Every reason a decision can carry (a fixed set: safe as a metric label). */
export const DECISION_REASONS = [
  'allowed_by_rule',
  'denied_by_rule',
  'no_matching_rule',
  'no_policy',
  'default_allow',
  'break_glass',
  'invalid_path',
  'unauthenticated',
] as const;

/**
 * allowed_by_rule: a rule of an ALLOW policy matched. denied_by_rule: a rule of a DENY policy matched.
 * no_matching_rule: ALLOW policies select the destination but none of their rules matched.
 * unauthenticated: as no_matching_rule, for a caller without a verified identity (no rule names UNAUTHENTICATED).
 * no_policy: no enforce-mode ALLOW policy selects the destination (and no DENY rule matched), the default is deny.
 * default_allow: the same with the default allow.
 * break_glass: an unexpired break-glass grant matched. invalid_path: the HTTP path could not be safely normalized.
 */
export type DecisionReason = (typeof DECISION_REASONS)[number];

export interface AuditOutcome {
  allowed: boolean;
  policy: string | null;
  rule: number | null;
  reason: DecisionReason;
}

export interface Decision {
  allowed: boolean;
  /** The deciding policy's name, "break-glass/<id>" for a grant, null when no single policy decided. */
  policy: string | null;
  /** Index of the deciding rule within the policy, or null. */
  rule: number | null;
  reason: DecisionReason;
  /**
   * The deciding policy's mode; 'enforce' also for no_matching_rule, unauthenticated and invalid_path;
   * 'break-glass' when a grant decided; 'default' when defaultAction decided (no_policy, default_allow).
   */
  mode: PolicyMode | 'break-glass' | 'default';
  /** What the decision would be with audit-mode policies enforced, when that differs or an audit policy decides it. */
  audit?: AuditOutcome;
}
