// Builds proxies' complete config snapshots: the trust bundle(s), the policies that select the proxy's SPIFFE ID,
// the unexpired break-glass grants whose `to` matches it and the deny-list (the same for every proxy); plus a key to
// tell whether content changed. What every caller shares is prepared once per version (SnapshotParts): the bundles,
// the deny-list, each policy's document, digest and encoding, indexed by selector (policy-index.ts), and the grants
// by `to` (grant-index.ts). A caller's build then costs what selects it, not the whole policy set; with the wire
// encoder its encoding is spliced from the shared pieces (protobuf fields concatenate; the encoder writes them in
// field-number order, so the bytes are those of encoding the whole message).
import { createHash } from 'node:crypto';
import type { ConfigSnapshotMsg, DenyListMsg } from '../../../common/contract/config-v1.js';
import type { TrustBundleMsg } from '../../../common/contract/identity-v1.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { type JwtAuthority, jwtAuthoritiesKey } from '../../../common/spiffe/spiffe-bundle.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { trustBundleMsg } from '../api/bundle-message.js';
import { withEncoding } from '../api/shared-encoding.js';
import { GrantIndex } from './grant-index.js';
import { PolicyIndex, type SnapshotEncoder } from './policy-index.js';

export type { SnapshotEncoder } from './policy-index.js';

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
  /** With an encoder, it carries its encoding (shared-encoding.ts). */
  readonly message: ConfigSnapshotMsg;
  /** Everything but version and time (digested): equal keys = nothing to send. */
  readonly contentKey: string;
  /** A grant in it expires then: a build after that would leave it out. */
  readonly validUntilMs: number;
  /** Policies and grants the build looked at for the ID (the ones its selector indexes returned). */
  readonly examined: number;
}

export interface SnapshotPartsOptions {
  /** The Watch response serializer: snapshots then carry their encoding, spliced from shared pieces. */
  readonly encode?: SnapshotEncoder;
  /** The previous version's policies, reused when the set is the same array (a loaded set is frozen). */
  readonly reuse?: PolicyIndex;
}

/** One version's snapshot inputs, prepared once for every caller. */
export class SnapshotParts {
  readonly policies: PolicyIndex;
  readonly #version: string;
  readonly #grants: GrantIndex;
  readonly #bundles: readonly TrustBundleMsg[];
  readonly #denyList: DenyListMsg;
  /** Digest of the bundles and the deny-list, the content every caller shares. */
  readonly #sharedDigest: string;
  readonly #encode: SnapshotEncoder | undefined;
  /** Fields 1-2 (version, bundles) and 6 (deny-list), encoded once. */
  readonly #head: Buffer | undefined;
  readonly #tail: Buffer | undefined;

  constructor(inputs: SnapshotInputs, nowMs: number, opts: SnapshotPartsOptions = {}) {
    const jwtOf = (b: TrustBundle) => inputs.jwtAuthorities?.get(b.trustDomain.name) ?? [];
    this.#version = String(inputs.version);
    this.policies = opts.reuse?.source === inputs.policies ? opts.reuse : new PolicyIndex(inputs.policies, opts.encode);
    this.#grants = new GrantIndex(inputs.grants, nowMs);
    this.#bundles = Object.freeze(inputs.bundles.map((b) => trustBundleMsg(b, jwtOf(b))));
    this.#denyList = Object.freeze({ spiffe_ids: [...inputs.denyList.spiffeIds].sort(), serials: [...inputs.denyList.serials].sort() });
    const shared = JSON.stringify([inputs.bundles.map((b) => [b.trustDomain.name, b.fingerprints(), jwtAuthoritiesKey(jwtOf(b))]), this.#denyList]);
    this.#sharedDigest = createHash('sha256').update(shared).digest('base64');
    this.#encode = opts.encode;
    this.#head = opts.encode?.({ version: this.#version, bundles: [...this.#bundles] });
    this.#tail = opts.encode?.({ deny_list: this.#denyList });
  }

  /** `id`'s snapshot at this version. */
  build(id: SpiffeId, nowMs: number): BuiltSnapshot {
    const idText = id.toString();
    const policies = this.policies.selecting(id, idText);
    const grants = this.#grants.naming(id, idText, nowMs);
    const breakGlass = grants.map((g) => g.msg);
    const key = createHash('sha256').update(this.#sharedDigest);
    for (const p of policies) key.update(p.digest);
    key.update(JSON.stringify(breakGlass));
    const message: ConfigSnapshotMsg = {
      version: this.#version,
      bundles: [...this.#bundles],
      policies: policies.map((p) => p.doc),
      break_glass: breakGlass,
      generated_at_unix_ms: String(nowMs),
      deny_list: this.#denyList,
    };
    const policyBytes = policies.flatMap((p) => (p.bytes ? [p.bytes] : []));
    if (this.#encode && this.#head && this.#tail && policyBytes.length === policies.length) {
      const own = this.#encode({ break_glass: breakGlass, generated_at_unix_ms: message.generated_at_unix_ms });
      withEncoding(message, Buffer.concat([this.#head, ...policyBytes, own, this.#tail]));
    }
    const validUntilMs = grants.reduce((until, g) => Math.min(until, g.expiresAtMs), Number.POSITIVE_INFINITY);
    return { message, contentKey: key.digest('base64'), validUntilMs, examined: policies.length + grants.length };
  }
}

/** One caller's snapshot, its version's parts prepared for it alone (tools and tests). */
export function buildSnapshot(inputs: SnapshotInputs, id: SpiffeId, nowMs: number, opts: SnapshotPartsOptions = {}): BuiltSnapshot {
  return new SnapshotParts(inputs, nowMs, opts).build(id, nowMs);
}
