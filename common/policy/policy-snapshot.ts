// An immutable, versioned set of compiled policies and break-glass grants, indexed by destination so evaluation
// costs grow with the policies selecting a destination, not with the mesh: a selector index (exact Map, wildcard
// trie) and a bounded per-destination memo of the candidates (a sidecar asks for itself forever).
import { createHash } from 'node:crypto';
import { TesseraError } from '../errors.js';
import type { SpiffeId } from '../spiffe/spiffe-id.js';
import { compileIdPattern } from '../spiffe/match.js';
import { type CompiledGrant, type CompiledPolicy, compileGrant, compilePolicy } from './compiled-policy.js';
import { policyToJson } from './parse-policy.js';
import type { AuthorizationPolicy, BreakGlassGrant } from './policy-types.js';
import { SelectorIndex } from './selector-index.js';

export interface PolicySnapshotOptions {
  /** Defaults to a hash of the policies, the default action and the grants. */
  version?: string;
  /** What happens to a destination no enforce-mode policy selects. Default deny (fail closed). */
  defaultAction?: 'deny' | 'allow';
  breakGlass?: BreakGlassGrant[];
}

/** Everything evaluate() needs for one destination, in name order. */
export interface DestinationPlan {
  /** Every policy selecting the destination, enforce and audit. */
  readonly selecting: readonly AuthorizationPolicy[];
  readonly enforceDeny: readonly CompiledPolicy[];
  readonly enforceAllow: readonly CompiledPolicy[];
  /** Enforce and audit together, for the audit pass. */
  readonly allDeny: readonly CompiledPolicy[];
  readonly allAllow: readonly CompiledPolicy[];
  readonly hasAudit: boolean;
  /** Grants whose `to` matches the destination (expiry is checked per request). */
  readonly grants: readonly CompiledGrant[];
}

/** Destinations whose plan is memoized per snapshot; the least recently used is dropped beyond this. */
export const PLAN_CACHE_SIZE = 1024;

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

interface Compiled {
  readonly policies: readonly CompiledPolicy[];
  readonly sources: readonly AuthorizationPolicy[];
  readonly index: SelectorIndex<CompiledPolicy>;
}

function indexPolicies(policies: readonly AuthorizationPolicy[]): Compiled {
  const compiled = policies.map(compilePolicy).sort(byName);
  for (let i = 1; i < compiled.length; i++) {
    if (compiled[i]!.name === compiled[i - 1]!.name) {
      const [a, b] = [compiled[i - 1]!.policy.source, compiled[i]!.policy.source];
      const where = a && b ? ` (${a.file}:${a.line} and ${b.file}:${b.line})` : '';
      throw new TesseraError('TESSERA_ERR_POLICY_DUPLICATE_NAME', `policy "${compiled[i]!.name}" is defined twice${where}`);
    }
  }
  const index = new SelectorIndex<CompiledPolicy>();
  for (const c of compiled) index.add(c.selector, c);
  return { policies: compiled, sources: Object.freeze(compiled.map((c) => c.policy)), index };
}

function versionOf(policies: readonly CompiledPolicy[], defaultAction: string, grants: readonly CompiledGrant[]): string {
  const h = createHash('sha256');
  h.update(`default:${defaultAction}\n`);
  for (const p of policies) h.update(`${policyToJson(p.policy)}\n`);
  for (const g of grants) h.update(`${JSON.stringify([g.grant.id, g.grant.to, g.grant.from, g.grant.expiresAtMs])}\n`);
  return h.digest('hex').slice(0, 16);
}

export class PolicySnapshot {
  readonly version: string;
  /** Sorted by name (code-unit order), frozen. */
  readonly policies: readonly AuthorizationPolicy[];
  readonly defaultAction: 'deny' | 'allow';
  readonly breakGlass: readonly BreakGlassGrant[];
  readonly #compiled: Compiled;
  readonly #grants: readonly CompiledGrant[];
  // The memo is the only mutable state; it caches a pure function of the immutable fields above.
  readonly #plans = new Map<string, DestinationPlan>();
  #lastKey = '';
  #lastPlan: DestinationPlan | null = null;

  private constructor(compiled: Compiled, grants: readonly CompiledGrant[], defaultAction: 'deny' | 'allow', version: string | undefined) {
    this.#compiled = compiled;
    this.#grants = grants;
    this.defaultAction = defaultAction;
    this.policies = compiled.sources;
    this.breakGlass = Object.freeze(grants.map((g) => g.grant));
    this.version = version ?? versionOf(compiled.policies, defaultAction, grants);
    Object.freeze(this);
  }

  /** @internal Use compilePolicies(). */
  static create(policies: readonly AuthorizationPolicy[], opts: PolicySnapshotOptions = {}): PolicySnapshot {
    const defaultAction = opts.defaultAction ?? 'deny';
    if (defaultAction !== 'deny' && defaultAction !== 'allow') {
      throw new TesseraError('TESSERA_ERR_POLICY_INVALID', `defaultAction must be deny or allow (got ${String(defaultAction)})`);
    }
    return new PolicySnapshot(indexPolicies(policies), (opts.breakGlass ?? []).map(compileGrant), defaultAction, opts.version);
  }

  /** The same policies with another set of break-glass grants (grants change far more often than policies). */
  withBreakGlass(grants: BreakGlassGrant[], version?: string): PolicySnapshot {
    return new PolicySnapshot(this.#compiled, grants.map(compileGrant), this.defaultAction, version);
  }

  /** Policies (enforce and audit) selecting the destination, in name order. */
  selecting(destination: SpiffeId): readonly AuthorizationPolicy[] {
    return this.planFor(destination).selecting;
  }

  /** The memoized candidates for one destination; evaluate() calls this once per request. */
  planFor(destination: SpiffeId): DestinationPlan {
    const key = destination.toString();
    if (key === this.#lastKey && this.#lastPlan) return this.#lastPlan;
    let plan = this.#plans.get(key);
    if (plan) {
      // Move to the most recent end so eviction drops the least recently used.
      this.#plans.delete(key);
      this.#plans.set(key, plan);
    } else {
      plan = this.#buildPlan(destination, key);
      if (this.#plans.size >= PLAN_CACHE_SIZE) this.#plans.delete(this.#plans.keys().next().value!);
      this.#plans.set(key, plan);
    }
    this.#lastKey = key;
    this.#lastPlan = plan;
    return plan;
  }

  /** Number of memoized destinations (for tests and the bench). */
  get cachedDestinations(): number {
    return this.#plans.size;
  }

  #buildPlan(destination: SpiffeId, key: string): DestinationPlan {
    const all = this.#compiled.index.select(destination, key).sort(byName);
    const enforce = all.filter((c) => c.mode === 'enforce');
    return Object.freeze({
      selecting: Object.freeze(all.map((c) => c.policy)),
      enforceDeny: enforce.filter((c) => c.action === 'DENY'),
      enforceAllow: enforce.filter((c) => c.action === 'ALLOW'),
      allDeny: all.filter((c) => c.action === 'DENY'),
      allAllow: all.filter((c) => c.action === 'ALLOW'),
      hasAudit: enforce.length !== all.length,
      grants: this.#grants.filter((g) => g.to.matches(destination)),
    });
  }
}

/** Compiles and indexes policies; throws TESSERA_ERR_POLICY_INVALID / _DUPLICATE_NAME naming the policy. */
export function compilePolicies(policies: AuthorizationPolicy[], opts?: PolicySnapshotOptions): PolicySnapshot {
  return PolicySnapshot.create(policies, opts);
}

/** Policies whose selector matches the ID, in name order (no snapshot needed: for tools and explanations). */
export function policiesSelecting(policies: readonly AuthorizationPolicy[], id: SpiffeId): AuthorizationPolicy[] {
  return policies.filter((p) => compileIdPattern(p.selector).matches(id)).sort(byName);
}
