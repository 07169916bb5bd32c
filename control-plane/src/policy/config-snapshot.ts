// Builds one proxy's complete config snapshot (pure): the trust bundle(s), the policies that select its SPIFFE
// ID, the unexpired break-glass grants whose `to` matches it and the deny-list (the same for every proxy); plus a
// key to tell whether content changed.
import { policiesSelecting, } from '../../../common/policy/policy-snapshot.js';
import { policyToJson } from '../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { compileIdPattern } from '../../../common/spiffe/match.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';
import { type JwtAuthority, jwtAuthoritiesKey } from '../../../common/spiffe/spiffe-bundle.js';
import { trustBundleMsg } from '../api/bundle-message.js';

export interface SnapshotInputs {
  readonly version: number;
  readonly bundles: readonly TrustBundle[];
  /** JWT-SVID keys by trust domain name (published with that domain's bundle). */
  readonly jwtAuthorities?: ReadonlyMap<string, readonly JwtAuthority[]>;
  readonly policies: readonly AuthorizationPolicy[];
  readonly grants: readonly BreakGlassGrant[];
  /** Banned SPIFFE IDs and SVID serials (canonical), enforced by every proxy. */
  readonly denyList: { readonly spiffeIds: readonly string[]; readonly serials: readonly string[] };
}

export interface BuiltSnapshot {
  readonly message: ConfigSnapshotMsg;
  /** Everything but version and time: equal keys = nothing to send. */
  readonly contentKey: string;
}

export function buildSnapshot(inputs: SnapshotInputs, id: SpiffeId, nowMs: number): BuiltSnapshot {
  const jwtOf = (b: TrustBundle) => inputs.jwtAuthorities?.get(b.trustDomain.name) ?? [];
  const bundles = inputs.bundles.map((b) => trustBundleMsg(b, jwtOf(b)));
  const policies = policiesSelecting(inputs.policies, id).map((p) => ({ name: p.name, json: policyToJson(p) }));
  const grants = inputs.grants
    .filter((g) => g.expiresAtMs > nowMs && compileIdPattern(g.to).matches(id))
    .map((g) => ({
      id: g.id,
      to: g.to,
      from: [...g.from],
      expires_at_unix_ms: String(g.expiresAtMs),
      reason: g.reason,
      created_by: g.createdBy ?? '',
      created_at_unix_ms: String(g.createdAtMs ?? 0),
    }));
  const denyList = { spiffe_ids: [...inputs.denyList.spiffeIds].sort(), serials: [...inputs.denyList.serials].sort() };
  const contentKey = JSON.stringify([
    inputs.bundles.map((b) => [b.trustDomain.name, b.fingerprints(), jwtAuthoritiesKey(jwtOf(b))]),
    policies,
    grants,
    denyList,
  ]);
  return {
    message: { version: String(inputs.version), bundles, policies, break_glass: grants, generated_at_unix_ms: String(nowMs), deny_list: denyList },
    contentKey,
  };
}
