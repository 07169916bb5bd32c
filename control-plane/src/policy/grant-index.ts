// The break-glass grants of one config version as Config/Watch serves them, prepared once for all callers: each
// usable grant's wire message, indexed by its `to` pattern, so a caller's snapshot touches only the grants that
// can name it (the expiry is still checked at each build: a grant leaves the snapshots built after it expires).
import type { BreakGlassGrantMsg } from '../../../common/contract/config-v1.js';
import type { BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { SelectorIndex } from '../../../common/policy/selector-index.js';
import { type IdPattern, compileIdPattern } from '../../../common/spiffe/match.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

export interface GrantPart {
  /** Position in the grants given: the order a snapshot lists them in. */
  readonly position: number;
  readonly expiresAtMs: number;
  readonly msg: BreakGlassGrantMsg;
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

function grantMsg(g: BreakGlassGrant): BreakGlassGrantMsg {
  return Object.freeze({
    id: g.id,
    to: g.to,
    from: [...g.from],
    expires_at_unix_ms: String(g.expiresAtMs),
    reason: g.reason,
    created_by: g.createdBy ?? '',
    created_at_unix_ms: String(g.createdAtMs ?? 0),
  });
}

export class GrantIndex {
  readonly #index = new SelectorIndex<GrantPart>();

  /** Grants already expired at `nowMs` are left out (no later build could serve them). */
  constructor(grants: readonly BreakGlassGrant[], nowMs: number) {
    grants.forEach((g, position) => {
      const u = g.expiresAtMs > nowMs ? usableGrant(g) : undefined;
      if (u) this.#index.add(u.to, Object.freeze({ position, expiresAtMs: g.expiresAtMs, msg: grantMsg(u.grant) }));
    });
  }

  /** The grants naming `id` that are unexpired at `nowMs`, in the order given. */
  naming(id: SpiffeId, idText: string, nowMs: number): GrantPart[] {
    return this.#index
      .select(id, idText)
      .filter((g) => g.expiresAtMs > nowMs)
      .sort((a, b) => a.position - b.position);
  }
}
