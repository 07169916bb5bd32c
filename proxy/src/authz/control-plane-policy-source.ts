// Authorization policy from the control plane: turns the policy documents and break-glass grants of one
// Config/Watch snapshot into a compiled PolicySnapshot (validated whole, or refused whole), versioned like it.
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';
import { TesseraError } from '../../../common/errors.js';
import { parsePolicyObject } from '../../../common/policy/parse-policy.js';
import { type PolicySnapshot, compilePolicies } from '../../../common/policy/policy-snapshot.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';

/** The policy part of a ConfigSnapshot message. */
export type PolicyPartMsg = Pick<ConfigSnapshotMsg, 'version' | 'policies' | 'break_glass'>;

const bad = (msg: string, cause?: unknown) => new TesseraError('TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT', msg, {}, cause ? { cause } : undefined);

/** Parses and compiles; throws TESSERA_ERR_CONFIG_WATCH_BAD_SNAPSHOT naming the first bad policy or grant. */
export function policySnapshotFromWatch(msg: PolicyPartMsg, opts: { defaultAction?: 'deny' | 'allow' } = {}): PolicySnapshot {
  const policies: AuthorizationPolicy[] = [];
  for (const doc of msg.policies) {
    let obj: unknown;
    try {
      obj = JSON.parse(doc.json);
    } catch (e) {
      throw bad(`policy "${doc.name}" is not JSON: ${(e as Error).message}`, e);
    }
    let p: AuthorizationPolicy;
    try {
      p = parsePolicyObject(obj, { file: `control-plane:${doc.name}`, line: 0 });
    } catch (e) {
      throw bad(`policy "${doc.name}": ${(e as Error).message}`, e);
    }
    if (p.name !== doc.name) throw bad(`policy document "${doc.name}" holds policy "${p.name}"`);
    policies.push(p);
  }
  const grants: BreakGlassGrant[] = msg.break_glass.map((g) => {
    const expiresAtMs = Number(g.expires_at_unix_ms);
    if (!Number.isFinite(expiresAtMs) || g.from.length === 0) throw bad(`break-glass grant "${g.id}" is malformed`);
    return {
      id: g.id,
      to: g.to,
      from: [...g.from],
      expiresAtMs,
      reason: g.reason,
      ...(g.created_by ? { createdBy: g.created_by } : {}),
      ...(Number(g.created_at_unix_ms) > 0 ? { createdAtMs: Number(g.created_at_unix_ms) } : {}),
    };
  });
  try {
    return compilePolicies(policies, { version: `cp-${msg.version}`, breakGlass: grants, ...(opts.defaultAction ? { defaultAction: opts.defaultAction } : {}) });
  } catch (e) {
    throw bad(`policies do not compile: ${(e as Error).message}`, e);
  }
}
