// Callers without a verified SPIFFE ID (plaintext on a permissive inbound listener, an edge client without a
// certificate): no SPIFFE ID pattern matches them, only an explicit `from: [unauthenticated]` does, in ALLOW and
// DENY rules alike; break-glass grants never name them; the default-deny still applies.
import { describe, expect, test } from 'vitest';
import { compileGrant } from '../../../../common/policy/compiled-policy.js';
import { evaluate } from '../../../../common/policy/evaluate.js';
import { parsePolicyObject, parsePolicyYaml, policyToJson } from '../../../../common/policy/parse-policy.js';
import { compilePolicies } from '../../../../common/policy/policy-snapshot.js';
import type { AuthzRequest, Decision } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';

const TD = 'spiffe://ex.org';
const API = `${TD}/ns/default/sa/api`;
const WEB = `${TD}/ns/default/sa/web`;

function policy(name: string, action: 'ALLOW' | 'DENY', rules: string, mode = 'enforce'): string {
  return `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}}\nspec:\n  selector: "${API}"\n  action: ${action}\n  mode: ${mode}\n  rules:\n${rules}---\n`;
}
const snapshotOf = (yaml: string, defaultAction: 'deny' | 'allow' = 'deny') => compilePolicies(parsePolicyYaml(yaml, 't.yaml'), { defaultAction });

function req(from: string | null, path = '/x', protocol: AuthzRequest['protocol'] = 'http', port = 15006): AuthzRequest {
  return { source: from === null ? null : SpiffeId.parse(from), destination: SpiffeId.parse(API), port, method: 'GET', protocol, nowMs: 1, ...(protocol === 'tcp' ? {} : { path }) };
}
const pick = (d: Decision) => ({ allowed: d.allowed, policy: d.policy, rule: d.rule, reason: d.reason });

describe('from: [unauthenticated]', () => {
  const ALLOW = policy('api-allow', 'ALLOW', `    - from: ["${TD}/**"]\n    - from: [unauthenticated]\n      to: { paths: ["/public/**"] }\n    - from: [unauthenticated]\n      to: { ports: [9000] }\n`);

  test.each<[string, AuthzRequest, ReturnType<typeof pick>]>([
    ['an unauthenticated caller on an allowed path', req(null, '/public/a'), { allowed: true, policy: 'api-allow', rule: 1, reason: 'allowed_by_rule' }],
    ['an unauthenticated caller elsewhere', req(null, '/private'), { allowed: false, policy: null, rule: null, reason: 'unauthenticated' }],
    ['"spiffe://td/**" never matches an unauthenticated caller', req(null, '/private'), { allowed: false, policy: null, rule: null, reason: 'unauthenticated' }],
    ['an authenticated caller is not matched by the unauthenticated rule', req('spiffe://other.org/x', '/public/a'), { allowed: false, policy: null, rule: null, reason: 'no_matching_rule' }],
    ['an authenticated caller matched by its ID', req(WEB, '/private'), { allowed: true, policy: 'api-allow', rule: 0, reason: 'allowed_by_rule' }],
    ['TCP: a paths rule never matches, a ports rule does', req(null, '', 'tcp', 9000), { allowed: true, policy: 'api-allow', rule: 2, reason: 'allowed_by_rule' }],
    ['TCP on another port', req(null, '', 'tcp', 9001), { allowed: false, policy: null, rule: null, reason: 'unauthenticated' }],
  ])('%s', (_name, r, want) => {
    expect(pick(evaluate(snapshotOf(ALLOW), r))).toEqual(want);
  });

  test('a DENY rule naming unauthenticated requires authentication, even with the default allow', () => {
    const snap = snapshotOf(policy('require-mtls', 'DENY', '    - from: [unauthenticated]\n'), 'allow');
    expect(pick(evaluate(snap, req(null)))).toEqual({ allowed: false, policy: 'require-mtls', rule: 0, reason: 'denied_by_rule' });
    expect(pick(evaluate(snap, req(WEB)))).toEqual({ allowed: true, policy: null, rule: null, reason: 'default_allow' });
  });

  test('a DENY rule of SPIFFE ID patterns does not catch an unauthenticated caller', () => {
    const snap = snapshotOf(policy('deny-all-td', 'DENY', `    - from: ["${TD}/**"]\n`), 'allow');
    expect(pick(evaluate(snap, req(null)))).toMatchObject({ allowed: true, reason: 'default_allow' });
  });

  test('no policy: the default decides (deny unless the proxy is configured to allow)', () => {
    expect(pick(evaluate(snapshotOf(''), req(null)))).toMatchObject({ allowed: false, reason: 'no_policy' });
    expect(pick(evaluate(snapshotOf('', 'allow'), req(null)))).toMatchObject({ allowed: true, reason: 'default_allow' });
  });

  test('audit mode: an audit DENY of unauthenticated callers reports what it would refuse without refusing', () => {
    const snap = snapshotOf(policy('audit-require-mtls', 'DENY', '    - from: [unauthenticated]\n', 'audit'), 'allow');
    const d = evaluate(snap, req(null));
    expect(d.allowed).toBe(true);
    expect(d.audit).toEqual({ allowed: false, policy: 'audit-require-mtls', rule: 0, reason: 'denied_by_rule' });
  });

  test('round-trips through the JSON form the control plane sends', () => {
    const [p] = parsePolicyYaml(ALLOW, 't.yaml');
    expect(parsePolicyObject(JSON.parse(policyToJson(p!)))).toEqual(p);
  });

  test('other words are still refused as SPIFFE ID patterns (no "Unauthenticated", no "anonymous")', () => {
    for (const word of ['Unauthenticated', 'anonymous', 'unauthenticated/x']) {
      expect(() => parsePolicyYaml(policy('p', 'ALLOW', `    - from: ["${word}"]\n`), 't.yaml')).toThrow(/TESSERA_ERR_POLICY_INVALID|not a SPIFFE ID pattern or "unauthenticated"/);
    }
  });

  test('a break-glass grant cannot name unauthenticated callers', () => {
    expect(() => compileGrant({ id: 'g', to: API, from: ['unauthenticated'], expiresAtMs: 10, reason: 'r' })).toThrow(/not a SPIFFE ID pattern/);
  });
});
