// The config snapshot as the control plane built it before audit 40a, one caller at a time over the whole input:
// every policy's selector compiled and matched against the ID, every grant's patterns compiled, the JSON of each
// selecting policy written again. Kept as the reference the indexed build (config-snapshot.ts) must equal.
import type { ConfigSnapshotMsg } from '../../common/contract/config-v1.js';
import { policiesSelecting } from '../../common/policy/policy-snapshot.js';
import { policyToJson } from '../../common/policy/parse-policy.js';
import type { BreakGlassGrant } from '../../common/policy/policy-types.js';
import { type IdPattern, compileIdPattern } from '../../common/spiffe/match.js';
import { jwtAuthoritiesKey } from '../../common/spiffe/spiffe-bundle.js';
import type { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../common/spiffe/trust-bundle.js';
import { trustBundleMsg } from '../../control-plane/src/api/bundle-message.js';
import type { SnapshotInputs } from '../../control-plane/src/policy/config-snapshot.js';

function compiles(pattern: string): IdPattern | undefined {
  try {
    return compileIdPattern(pattern);
  } catch {
    return undefined;
  }
}

function usableGrant(g: BreakGlassGrant): { grant: BreakGlassGrant; to: IdPattern } | undefined {
  const to = compiles(g.to);
  const from = g.from.filter((f) => compiles(f) !== undefined);
  if (!to || from.length === 0) return undefined;
  return { grant: from.length === g.from.length ? g : { ...g, from }, to };
}

/** The pre-stop-51 buildSnapshot: its message, and its content key (the whole content as JSON). */
export function fullScanSnapshot(inputs: SnapshotInputs, id: SpiffeId, nowMs: number): { message: ConfigSnapshotMsg; contentKey: string } {
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
  const contentKey = JSON.stringify([inputs.bundles.map((b) => [b.trustDomain.name, b.fingerprints(), jwtAuthoritiesKey(jwtOf(b))]), policies, grants, denyList]);
  return {
    message: { version: String(inputs.version), bundles, policies, break_glass: grants, generated_at_unix_ms: String(nowMs), deny_list: denyList },
    contentKey,
  };
}
