// Policies and break-glass grants compiled for matching: ID patterns as an exact set plus one regex of the
// wildcards, ports and methods as sets, path patterns as one regex. Values built by hand are re-checked here.
import { TesseraError, describeError } from '../errors.js';
import { type IdPattern, compileIdPattern } from '../spiffe/match.js';
import { anyOf, idPatternSource, pathPatternSource } from './pattern-regex.js';
import { checkPathPattern } from './policy-schema.js';
import { type AuthorizationPolicy, type BreakGlassGrant, type PolicyAction, type PolicyMode, type PolicyRule, UNAUTHENTICATED } from './policy-types.js';

/** A set of ID patterns: plain IDs looked up by their text, wildcards as one anchored regex over the text. */
export interface IdMatcher {
  readonly exact: ReadonlySet<string>;
  readonly wild: RegExp | null;
  /** The list names UNAUTHENTICATED: callers without a verified SPIFFE ID match (and only then). */
  readonly unauthenticated: boolean;
}

/** `idText` null = a caller without a verified SPIFFE ID: matched only by an explicit UNAUTHENTICATED entry. */
export function idMatcherMatches(m: IdMatcher, idText: string | null): boolean {
  if (idText === null) return m.unauthenticated;
  return m.exact.has(idText) || m.wild?.test(idText) === true;
}

export interface CompiledRule {
  readonly index: number;
  readonly from: IdMatcher;
  readonly ports: ReadonlySet<number> | null;
  readonly methods: ReadonlySet<string> | null;
  /** Every path pattern of the rule, matched against the normalized path. */
  readonly paths: RegExp | null;
}

export interface CompiledPolicy {
  readonly policy: AuthorizationPolicy;
  readonly name: string;
  readonly action: PolicyAction;
  readonly mode: PolicyMode;
  readonly selector: IdPattern;
  readonly rules: readonly CompiledRule[];
}

export interface CompiledGrant {
  readonly grant: BreakGlassGrant;
  /** "break-glass/<id>", the policy name decisions report. */
  readonly name: string;
  readonly to: IdPattern;
  readonly from: IdMatcher;
  readonly expiresAtMs: number;
}

function fail(what: string, key: string, message: string): never {
  throw new TesseraError('TESSERA_ERR_POLICY_INVALID', `${what}: ${key}: ${message}`);
}

function idPattern(text: unknown, what: string, key: string): IdPattern {
  if (typeof text !== 'string') fail(what, key, 'must be a string');
  try {
    return compileIdPattern(text);
  } catch (e) {
    return fail(what, key, `"${text}" is not a SPIFFE ID pattern (${describeError(e)})`);
  }
}

/** `callers`: policy rules may name UNAUTHENTICATED; break-glass grants may not (they are for named workloads). */
function idMatcher(patterns: unknown, what: string, key: string, callers: boolean): IdMatcher {
  if (!Array.isArray(patterns) || patterns.length === 0) fail(what, key, 'must be a non-empty list of SPIFFE ID patterns');
  const exact = new Set<string>();
  const wild: string[] = [];
  let unauthenticated = false;
  patterns.forEach((text, i) => {
    if (callers && text === UNAUTHENTICATED) {
      unauthenticated = true;
      return;
    }
    const p = idPattern(text, what, `${key}[${i}]`);
    if (p.exact) exact.add(p.source);
    else wild.push(idPatternSource(p.source));
  });
  return { exact, wild: anyOf(wild), unauthenticated };
}

function nonEmptyList<T>(v: T[] | undefined, what: string, key: string): T[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length === 0) fail(what, key, 'must be a non-empty list');
  return v;
}

function compileRule(r: PolicyRule, index: number, what: string): CompiledRule {
  const key = `rules[${index}]`;
  const from = idMatcher(r.from, what, `${key}.from`, true);
  const ports = nonEmptyList(r.to?.ports, what, `${key}.to.ports`);
  ports?.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) fail(what, `${key}.to.ports[${i}]`, `${String(p)} is not a port (1-65535)`);
  });
  const methods = nonEmptyList(r.to?.methods, what, `${key}.to.methods`);
  const paths = nonEmptyList(r.to?.paths, what, `${key}.to.paths`)?.map((p, i) => {
    const bad = typeof p === 'string' ? checkPathPattern(p) : 'must be a string';
    if (bad) fail(what, `${key}.to.paths[${i}]`, bad);
    return pathPatternSource(p);
  });
  return Object.freeze({ index, from, ports: ports && new Set(ports), methods: methods && new Set(methods), paths: paths ? anyOf(paths) : null });
}

/** The value itself when already frozen (parsed policies are), else a deep-frozen copy: snapshots stay immutable. */
function frozen<T>(v: T): T {
  if (Object.isFrozen(v)) return v;
  const deepFreeze = (x: unknown): void => {
    if (x && typeof x === 'object') {
      for (const y of Object.values(x)) deepFreeze(y);
      Object.freeze(x);
    }
  };
  const copy = structuredClone(v);
  deepFreeze(copy);
  return copy;
}

export function compilePolicy(input: AuthorizationPolicy): CompiledPolicy {
  const p = frozen(input);
  const what = `policy "${p.name}"${p.source ? ` (${p.source.file}:${p.source.line})` : ''}`;
  if (typeof p.name !== 'string' || p.name === '') fail('policy', 'name', 'is required');
  if (p.action !== 'ALLOW' && p.action !== 'DENY') fail(what, 'action', `must be ALLOW or DENY (got ${String(p.action)})`);
  if (p.mode !== 'enforce' && p.mode !== 'audit') fail(what, 'mode', `must be enforce or audit (got ${String(p.mode)})`);
  if (!Array.isArray(p.rules)) fail(what, 'rules', 'must be a list');
  return Object.freeze({
    policy: p,
    name: p.name,
    action: p.action,
    mode: p.mode,
    selector: idPattern(p.selector, what, 'selector'),
    rules: Object.freeze(p.rules.map((r, i) => compileRule(r, i, what))),
  });
}

export function compileGrant(input: BreakGlassGrant): CompiledGrant {
  const g = frozen(input);
  const what = `break-glass grant "${g.id}"`;
  if (typeof g.id !== 'string' || g.id === '') fail('break-glass grant', 'id', 'is required');
  if (typeof g.expiresAtMs !== 'number' || Number.isNaN(g.expiresAtMs)) fail(what, 'expiresAtMs', 'must be a number');
  return Object.freeze({ grant: g, name: `break-glass/${g.id}`, to: idPattern(g.to, what, 'to'), from: idMatcher(g.from, what, 'from', false), expiresAtMs: g.expiresAtMs });
}
