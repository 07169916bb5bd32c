// The policies of one policy set as Config/Watch serves them, prepared once for all callers: each policy's JSON
// document, a digest of it (for content keys) and, given the wire encoder, its encoded snapshot field; indexed by
// selector (exact IDs in a Map, wildcards in a per-trust-domain trie: common/policy/selector-index.ts). A caller's
// snapshot then touches only the policies selecting it. An outside audit (40a) saw every build compile every
// selector and re-write the JSON of each selected policy: ~10-40 ms per SPIFFE ID under a 2,000-rule policy.
import { createHash } from 'node:crypto';
import type { ConfigSnapshotMsg, PolicyDocumentMsg } from '../../../common/contract/config-v1.js';
import { policyToJson } from '../../../common/policy/parse-policy.js';
import type { AuthorizationPolicy } from '../../../common/policy/policy-types.js';
import { SelectorIndex } from '../../../common/policy/selector-index.js';
import { compileIdPattern } from '../../../common/spiffe/match.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

/** Encodes (part of) a ConfigSnapshot as the wire does: the Watch method's response serializer. */
export type SnapshotEncoder = (message: Partial<ConfigSnapshotMsg>) => Buffer;

export interface PolicyPart {
  /** Position in name order (ties keep the set's order), the order a snapshot lists its policies in. */
  readonly rank: number;
  readonly doc: PolicyDocumentMsg;
  /** SHA-256 of name and JSON: what a content key needs of the policy. */
  readonly digest: string;
  /** The policy as one encoded `policies` field of a ConfigSnapshot (with an encoder only). */
  readonly bytes: Buffer | undefined;
}

export class PolicyIndex {
  /** The set this was built from: the same array (a loaded set is frozen) can reuse it at the next version. */
  readonly source: readonly AuthorizationPolicy[];
  readonly #index = new SelectorIndex<PolicyPart>();

  /** Throws as compiling a selector does (a set loaded from files never has a bad one). */
  constructor(policies: readonly AuthorizationPolicy[], encode: SnapshotEncoder | undefined) {
    this.source = policies;
    // Array sort is stable: equal names keep the set's order, as the full scan's sort did.
    const named = policies.map((policy) => ({ policy, name: policy.name })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    named.forEach(({ policy }, rank) => {
      const selector = compileIdPattern(policy.selector);
      const doc: PolicyDocumentMsg = Object.freeze({ name: policy.name, json: policyToJson(policy) });
      const digest = createHash('sha256').update(doc.name).update('\0').update(doc.json).digest('base64');
      this.#index.add(selector, Object.freeze({ rank, doc, digest, bytes: encode?.({ policies: [doc] }) }));
    });
  }

  /** The policies selecting `id`, in name order. */
  selecting(id: SpiffeId, idText: string): PolicyPart[] {
    return this.#index.select(id, idText).sort((a, b) => a.rank - b.rank);
  }
}
