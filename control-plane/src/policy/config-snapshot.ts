// Builds one proxy's complete config snapshot (pure): the trust bundle(s), the policies that select its SPIFFE
// ID, the unexpired break-glass grants whose `to` matches it and the deny-list (the same for every proxy); plus a
// key to tell whether content changed.
import { policiesSelecting, } from '../../../common/policy/policy-snapshot.js';
import { policyToJson } from '../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { type IdPattern, compileIdPattern } from '../../../common/spiffe/match.js';
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

function compiles(pattern: string): IdPattern | undefined {
  try {
    return compileIdPattern(pattern);
  } catch {
    return undefined;
  }
}

/**
 * A stored grant as proxies will compile it. A pattern no SPIFFE ID can match (over 2048 bytes, in a grant opened
 * before BreakGlass refused those) is left out, so such a grant cannot make proxies refuse the whole snapshot;
 * leaving it out allows nobody less.
 */
function usableGrant(g: BreakGlassGrant): { grant: BreakGlassGrant; to: IdPattern } | undefined {
  const to = compiles(g.to);
  const from = g.from.filter((f) => compiles(f) !== undefined);
  if (!to || from.length === 0) return undefined;
  return { grant: from.length === g.from.length ? g : { ...g, from }, to };
}

export function buildSnapshot(inputs: SnapshotInputs, id: SpiffeId, nowMs: number): BuiltSnapshot {
  const jwtOf = (b: TrustBundle) => inputs.jwtAuthorities?.get(b.trustDomain.name) ?? [];
  const bundles = inputs.bundles.map((b) => trustBundleMsg(b, jwtOf(b)));
  const policies = policiesSelecting(inputs.policies, id).map((p) => ({ name: p.name, json: policyToJson(p) }));
  const grants = inputs.grants
    .flatMap((g) => {
      const u = g.expiresAtMs > nowMs ? usableGrant(g) : undefined;
      return u?.to.matches(id) ? [u.grant] : [];
    })
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
