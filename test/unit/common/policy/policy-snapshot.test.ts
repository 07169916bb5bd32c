import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { evaluate } from '../../../../common/policy/evaluate.js';
import { PLAN_CACHE_SIZE, compilePolicies, policiesSelecting } from '../../../../common/policy/policy-snapshot.js';
import type { AuthorizationPolicy } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';

const TD = 'spiffe://ex.org';
const id = (s: string) => SpiffeId.parse(s);
const p = (name: string, selector: string, action: 'ALLOW' | 'DENY' = 'ALLOW', from = [`${TD}/web`], mode: 'enforce' | 'audit' = 'enforce'): AuthorizationPolicy => ({
  name,
  selector,
  action,
  mode,
  rules: [{ from }],
});
const req = (to: string, from = `${TD}/web`) => ({ source: id(from), destination: id(to), protocol: 'http' as const, nowMs: 0 });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isTesseraError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

describe('compilePolicies', () => {
  test('sorted by name, frozen, with the default action and grants', () => {
    const s = compilePolicies([p('b', `${TD}/api`), p('a', `${TD}/*`)], { defaultAction: 'allow' });
    expect(s.policies.map((x) => x.name)).toEqual(['a', 'b']);
    expect(Object.isFrozen(s.policies)).toBe(true);
    expect(Object.isFrozen(s)).toBe(true);
    expect(s.defaultAction).toBe('allow');
    expect(compilePolicies([]).defaultAction).toBe('deny');
  });
  test('hand-built policies are copied and frozen: later changes to the input change nothing', () => {
    const input = p('a', `${TD}/api`);
    const s = compilePolicies([input]);
    input.rules[0]!.from.push(`${TD}/ops`);
    input.action = 'DENY';
    expect(s.policies[0]).toEqual(p('a', `${TD}/api`));
    expect(Object.isFrozen(s.policies[0]!.rules[0]!.from)).toBe(true);
    expect(evaluate(s, req(`${TD}/api`, `${TD}/ops`))).toMatchObject({ allowed: false, reason: 'no_matching_rule' });
  });
  test('the version is a hash of the content: order-independent, changes with any change, or as given', () => {
    const a = compilePolicies([p('b', `${TD}/api`), p('a', `${TD}/*`)]);
    expect(compilePolicies([p('a', `${TD}/*`), p('b', `${TD}/api`)]).version).toBe(a.version);
    expect(a.version).toMatch(/^[0-9a-f]{16}$/);
    expect(compilePolicies([p('a', `${TD}/*`), p('b', `${TD}/api`, 'DENY')]).version).not.toBe(a.version);
    expect(compilePolicies([p('a', `${TD}/*`), p('b', `${TD}/api`)], { defaultAction: 'allow' }).version).not.toBe(a.version);
    expect(compilePolicies([], { version: 'v7' }).version).toBe('v7');
  });
  test.each<[string, AuthorizationPolicy[], RegExp]>([
    ['duplicate names', [p('a', `${TD}/x`), p('a', `${TD}/y`)], /TESSERA_ERR_POLICY_DUPLICATE_NAME: policy "a" is defined twice/],
    ['bad selector', [p('a', 'spiffe://ex.org/x*')], /TESSERA_ERR_POLICY_INVALID: policy "a": selector: .* is not a SPIFFE ID pattern/],
    ['bad from', [p('a', `${TD}/x`, 'ALLOW', ['nope'])], /TESSERA_ERR_POLICY_INVALID: policy "a": rules\[0\]\.from\[0\]: "nope"/],
    ['empty from', [p('a', `${TD}/x`, 'ALLOW', [])], /TESSERA_ERR_POLICY_INVALID: policy "a": rules\[0\]\.from: must be a non-empty list/],
    ['lower-case action', [{ ...p('a', `${TD}/x`), action: 'allow' as 'ALLOW' }], /policy "a": action: must be ALLOW or DENY/],
    ['bad mode', [{ ...p('a', `${TD}/x`), mode: 'dry' as 'audit' }], /policy "a": mode: must be enforce or audit/],
    ['bad port', [{ ...p('a', `${TD}/x`), rules: [{ from: [`${TD}/w`], to: { ports: [0] } }] }], /rules\[0\]\.to\.ports\[0\]: 0 is not a port/],
    ['path not normalized', [{ ...p('a', `${TD}/x`), rules: [{ from: [`${TD}/w`], to: { paths: ['/a/../b'] } }] }], /rules\[0\]\.to\.paths\[0\]: .* not a normalized path/],
    ['empty methods', [{ ...p('a', `${TD}/x`), rules: [{ from: [`${TD}/w`], to: { methods: [] } }] }], /rules\[0\]\.to\.methods: must be a non-empty list/],
  ])('refuses %s', (_name, policies, message) => {
    expect(codeOf(() => compilePolicies(policies))).toMatch(message);
  });
  test('refuses bad grants and a bad default', () => {
    const g = { id: 'g', to: `${TD}/api`, from: [`${TD}/web`], expiresAtMs: 1, reason: 'r' };
    expect(codeOf(() => compilePolicies([], { breakGlass: [{ ...g, to: 'x' }] }))).toMatch(/TESSERA_ERR_POLICY_INVALID: break-glass grant "g": to:/);
    expect(codeOf(() => compilePolicies([], { breakGlass: [{ ...g, from: [] }] }))).toMatch(/break-glass grant "g": from: must be a non-empty list/);
    expect(codeOf(() => compilePolicies([], { breakGlass: [{ ...g, id: '' }] }))).toMatch(/break-glass grant: id: is required/);
    expect(codeOf(() => compilePolicies([], { defaultAction: 'permit' as 'allow' }))).toMatch(/defaultAction must be deny or allow/);
  });
});

describe('selection index and memo', () => {
  const policies = [
    p('exact-api', `${TD}/ns/a/sa/api`),
    p('ns-a-any', `${TD}/ns/a/sa/*`),
    p('td-all', `${TD}/**`),
    p('other-td', 'spiffe://other.org/ns/a/sa/api'),
    p('other-td-all', 'spiffe://other.org/**'),
    p('ns-b', `${TD}/ns/b/sa/*`),
  ];
  test('a destination sees exactly the policies selecting it, in name order', () => {
    const s = compilePolicies(policies);
    const names = (to: string) => s.selecting(id(to)).map((x) => x.name);
    expect(names(`${TD}/ns/a/sa/api`)).toEqual(['exact-api', 'ns-a-any', 'td-all']);
    expect(names(`${TD}/ns/a/sa/db`)).toEqual(['ns-a-any', 'td-all']);
    expect(names(`${TD}/ns/c/sa/db`)).toEqual(['td-all']);
    expect(names('spiffe://other.org/ns/a/sa/api')).toEqual(['other-td', 'other-td-all']);
    expect(names('spiffe://third.org/ns/a/sa/api')).toEqual([]);
    for (const to of [`${TD}/ns/a/sa/api`, `${TD}/ns/b/sa/x`, 'spiffe://other.org/x']) {
      expect(names(to)).toEqual(policiesSelecting(policies, id(to)).map((x) => x.name));
    }
  });
  test('memoization does not leak between snapshots', () => {
    const to = `${TD}/ns/a/sa/api`;
    const first = compilePolicies([p('allow-web', to)]);
    const second = compilePolicies([p('allow-ops', to, 'ALLOW', [`${TD}/ops`])]);
    expect(evaluate(first, req(to))).toMatchObject({ allowed: true, policy: 'allow-web' });
    expect(evaluate(second, req(to))).toMatchObject({ allowed: false, reason: 'no_matching_rule' });
    expect(evaluate(first, req(to))).toMatchObject({ allowed: true, policy: 'allow-web' });
    expect(evaluate(compilePolicies([]), req(to))).toMatchObject({ allowed: false, reason: 'no_policy' });
  });
  test('the memo is bounded and evicts the least recently used; answers stay right after eviction', () => {
    const s = compilePolicies([p('ns-any', `${TD}/ns/*/sa/api`)]);
    const hot = `${TD}/ns/hot/sa/api`;
    expect(evaluate(s, req(hot))).toMatchObject({ allowed: true, policy: 'ns-any' });
    const hotPlan = s.planFor(id(hot));
    const coldPlan = s.planFor(id(`${TD}/ns/n0/sa/api`));
    for (let i = 0; i < PLAN_CACHE_SIZE + 100; i++) {
      evaluate(s, req(`${TD}/ns/n${i}/sa/api`));
      if (i % 100 === 0) evaluate(s, req(hot));
    }
    expect(s.cachedDestinations).toBe(PLAN_CACHE_SIZE);
    // Recently used: still the memoized plan; used once long ago: evicted and rebuilt.
    expect(s.planFor(id(hot))).toBe(hotPlan);
    expect(s.planFor(id(`${TD}/ns/n0/sa/api`))).not.toBe(coldPlan);
    expect(evaluate(s, req(`${TD}/ns/n0/sa/api`))).toMatchObject({ allowed: true, policy: 'ns-any' });
    expect(evaluate(s, req(`${TD}/ns/n0/sa/other`))).toMatchObject({ allowed: false, reason: 'no_policy' });
    expect(s.cachedDestinations).toBe(PLAN_CACHE_SIZE);
  });
});
