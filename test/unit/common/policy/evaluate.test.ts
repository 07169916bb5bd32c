import { describe, expect, test } from 'vitest';
import { evaluate } from '../../../../common/policy/evaluate.js';
import { parsePolicyYaml } from '../../../../common/policy/parse-policy.js';
import { type PolicySnapshotOptions, compilePolicies } from '../../../../common/policy/policy-snapshot.js';
import type { AuthzRequest, BreakGlassGrant, Decision } from '../../../../common/policy/policy-types.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';

const TD = 'spiffe://ex.org';
const API = `${TD}/ns/default/sa/api`;
const WEB = `${TD}/ns/default/sa/web`;
const JOB = `${TD}/ns/batch/sa/job`;
const OPS = `${TD}/ns/ops/sa/oncall`;
const INTERN = `${TD}/ns/ops/sa/intern`;

function policy(name: string, selector: string, action: 'ALLOW' | 'DENY', rules: string, mode = 'enforce'): string {
  return `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}}\nspec:\n  selector: "${selector}"\n  action: ${action}\n  mode: ${mode}\n  rules:\n${rules}---\n`;
}

const BASE =
  policy(
    'api-allow',
    API,
    'ALLOW',
    `    - from: ["${WEB}", "${TD}/ns/batch/sa/*"]\n      to: { ports: [8443], methods: [GET, POST], paths: ["/v1/*", "/v1/items/**"] }\n    - from: ["${TD}/ns/ops/**"]\n`,
  ) +
  policy('default-deny-admin', `${TD}/ns/default/sa/*`, 'DENY', `    - from: ["${TD}/ns/batch/**", "${INTERN}"]\n      to: { paths: ["/admin/**"] }\n`) +
  policy('db-deny-batch', `${TD}/ns/data/sa/db`, 'DENY', `    - from: ["${TD}/ns/batch/**"]\n`);

function snapshotOf(yaml: string, opts?: PolicySnapshotOptions) {
  return compilePolicies(parsePolicyYaml(yaml, 'test.yaml'), opts);
}

interface Req {
  from?: string | null;
  to?: string;
  port?: number;
  method?: string;
  path?: string;
  protocol?: AuthzRequest['protocol'];
  nowMs?: number;
}
function req(r: Req): AuthzRequest {
  const out: AuthzRequest = {
    source: r.from === null ? null : SpiffeId.parse(r.from ?? WEB),
    destination: SpiffeId.parse(r.to ?? API),
    protocol: r.protocol ?? 'http',
    nowMs: r.nowMs ?? 1_000,
  };
  if (r.port !== undefined) out.port = r.port;
  if (r.method !== undefined) out.method = r.method;
  if (r.path !== undefined) out.path = r.path;
  return out;
}
const L7 = { port: 8443, method: 'GET' };
const allow = (policy: string, rule: number, mode = 'enforce'): Decision => ({ allowed: true, policy, rule, reason: 'allowed_by_rule', mode } as Decision);
const deny = (policy: string, rule: number, mode = 'enforce'): Decision => ({ allowed: false, policy, rule, reason: 'denied_by_rule', mode } as Decision);
const denied = (reason: Decision['reason'], mode: Decision['mode'] = 'enforce'): Decision => ({ allowed: false, policy: null, rule: null, reason, mode });

describe('evaluate: rules, wildcards, DENY over ALLOW, defaults', () => {
  const snap = snapshotOf(BASE);
  test.each<[string, Req, Decision]>([
    ['exact from, all to fields match', { ...L7, path: '/v1/items' }, allow('api-allow', 0)],
    ['second path pattern ("**")', { ...L7, method: 'POST', path: '/v1/items/42/parts' }, allow('api-allow', 0)],
    ['method not listed', { ...L7, method: 'DELETE', path: '/v1/items' }, denied('no_matching_rule')],
    ['method is case-sensitive', { ...L7, method: 'get', path: '/v1/items' }, denied('no_matching_rule')],
    ['path not listed', { ...L7, path: '/v2/items' }, denied('no_matching_rule')],
    ['"*" path is exactly one segment', { ...L7, path: '/v1/a/b' }, denied('no_matching_rule')],
    ['port not listed', { ...L7, port: 9000, path: '/v1/items' }, denied('no_matching_rule')],
    ['ALLOW rule with ports, request without a port', { method: 'GET', path: '/v1/items' }, denied('no_matching_rule')],
    ['"*" from wildcard: one segment', { ...L7, from: JOB, path: '/v1/x' }, allow('api-allow', 0)],
    ['"*" from wildcard does not span segments', { ...L7, from: `${JOB}/extra`, path: '/v1/x' }, denied('no_matching_rule')],
    ['"**" from wildcard: one or more segments', { from: `${OPS}/deep/er`, path: '/anything', method: 'DELETE' }, allow('api-allow', 1)],
    ['"**" needs at least one segment', { from: `${TD}/ns/ops`, path: '/x' }, denied('no_matching_rule')],
    ['same path in another trust domain', { ...L7, from: 'spiffe://other.org/ns/default/sa/web', path: '/v1/x' }, denied('no_matching_rule')],
    ['the query string is ignored', { ...L7, path: '/v1/items?debug=/admin' }, allow('api-allow', 0)],
    ['DENY wins over a matching ALLOW rule', { from: INTERN, path: '/admin/users', method: 'GET' }, deny('default-deny-admin', 0)],
    ['DENY rule not matching leaves ALLOW to decide', { from: INTERN, path: '/status', method: 'GET' }, allow('api-allow', 1)],
    ['wildcard selector: DENY applies to another workload', { to: `${TD}/ns/default/sa/other`, from: JOB, path: '/admin/x' }, deny('default-deny-admin', 0)],
    ['selected by DENY only, not denied: the default (deny) applies', { to: `${TD}/ns/default/sa/other`, from: JOB, path: '/public' }, denied('no_policy', 'default')],
    ['no policy selects the destination: deny', { to: `${TD}/ns/x/sa/y` }, denied('no_policy', 'default')],
    ['null source on an ALLOW-selected destination', { from: null, ...L7, path: '/v1/items' }, denied('unauthenticated')],
    ['null source, no policy', { from: null, to: `${TD}/ns/x/sa/y` }, denied('no_policy', 'default')],
    ['null source matches no DENY rule either', { from: null, to: `${TD}/ns/data/sa/db`, protocol: 'tcp' }, denied('no_policy', 'default')],
  ])('%s', (_name, r, want) => {
    expect(evaluate(snap, req(r))).toEqual(want);
  });

  test.each<[string, Req, Decision]>([
    ['no policy', { to: `${TD}/ns/x/sa/y` }, { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default' }],
    ['selected by DENY only, not denied', { to: `${TD}/ns/default/sa/other`, from: JOB, path: '/public' }, { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default' }],
    ['selected by DENY only, denied', { to: `${TD}/ns/default/sa/other`, from: JOB, path: '/admin/x' }, deny('default-deny-admin', 0)],
    ['"/admin/**" does not cover "/admin" itself ("**" is one or more segments)', { to: `${TD}/ns/default/sa/other`, from: JOB, path: '/admin' }, { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default' }],
    ['an ALLOW-selected destination still denies what no rule allows', { ...L7, path: '/v9' }, denied('no_matching_rule')],
    ['null source, no policy', { from: null, to: `${TD}/ns/x/sa/y` }, { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default' }],
  ])('defaultAction allow: %s', (_name, r, want) => {
    expect(evaluate(snapshotOf(BASE, { defaultAction: 'allow' }), req(r))).toEqual(want);
  });
});

describe('evaluate: TCP vs L7 rules', () => {
  const snap = snapshotOf(BASE);
  test.each<[string, Req, Decision]>([
    ['ALLOW rule with methods/paths never matches TCP', { from: WEB, port: 8443, protocol: 'tcp' }, denied('no_matching_rule')],
    ['ALLOW rule without to matches TCP', { from: OPS, port: 5432, protocol: 'tcp' }, allow('api-allow', 1)],
    ['DENY rule with paths matches TCP on from alone (fail closed)', { from: INTERN, port: 8443, protocol: 'tcp' }, deny('default-deny-admin', 0)],
    ['method and path given on TCP are ignored', { from: INTERN, protocol: 'tcp', method: 'GET', path: '/public' }, deny('default-deny-admin', 0)],
    ['TCP skips path normalization', { from: OPS, protocol: 'tcp', path: '/%2F' }, allow('api-allow', 1)],
    ['DENY without to matches TCP', { from: JOB, to: `${TD}/ns/data/sa/db`, protocol: 'tcp', port: 5432 }, deny('db-deny-batch', 0)],
    ['gRPC is L7: method and path match', { from: WEB, port: 8443, method: 'POST', path: '/v1/pkg.Items', protocol: 'grpc' }, allow('api-allow', 0)],
  ])('%s', (_name, r, want) => {
    expect(evaluate(snap, req(r))).toEqual(want);
  });
  test('DENY with ports: a request without a port is denied (fail closed), an ALLOW with ports is not matched', () => {
    const s = snapshotOf(
      policy('a-deny', API, 'DENY', `    - from: ["${JOB}"]\n      to: { ports: [9090] }\n`) + policy('b-allow', API, 'ALLOW', `    - from: ["${JOB}"]\n      to: { ports: [8443] }\n    - from: ["${WEB}"]\n`),
    );
    expect(evaluate(s, req({ from: JOB, port: 8443 }))).toEqual(allow('b-allow', 0));
    expect(evaluate(s, req({ from: JOB, port: 9090 }))).toEqual(deny('a-deny', 0));
    expect(evaluate(s, req({ from: JOB }))).toEqual(deny('a-deny', 0));
    expect(evaluate(s, req({ from: WEB }))).toEqual(allow('b-allow', 1));
  });
});

describe('evaluate: path normalization attacks against a DENY on /admin/**', () => {
  const snap = snapshotOf(BASE);
  test.each([
    '/admin/users',
    '/v1/../admin/users',
    '/v1/%2e%2e/admin/users',
    '//admin/users',
    '/./admin//users',
    '/%61dmin/users',
    '/admin/users?x=1',
    '/admin/',
    '/admin/x/../../admin/y',
  ])('%s is denied by the rule', (path) => {
    expect(evaluate(snap, req({ from: INTERN, method: 'GET', path }))).toEqual(deny('default-deny-admin', 0));
  });
  // A fragment is refused outright (RFC 9112 section 3.2): "/public#/../admin" is "/admin" to some apps.
  test.each(['/admin%2Fusers', '/admin%5cusers', '/admin\\users', '/../admin/users', '/%2e%2e/admin', '/a%zz', 'admin/users', '/admin/users#x', '/public#/../admin', '/public/..;/admin'])('%s is refused as invalid_path', (path) => {
    expect(evaluate(snap, req({ from: INTERN, method: 'GET', path }))).toEqual(denied('invalid_path'));
  });
  test('invalid_path holds whatever the default and the grants say', () => {
    const grant: BreakGlassGrant = { id: 'g', to: API, from: [INTERN], expiresAtMs: 5_000, reason: 'incident' };
    const s = snapshotOf('', { defaultAction: 'allow', breakGlass: [grant] });
    expect(evaluate(s, req({ from: INTERN, path: '/a/%2F' }))).toEqual(denied('invalid_path'));
  });
});

// An escaped "?" or "#" is forwarded as written, but an app that decodes the target and parses it again routes on
// what comes before it ("/admin%23x" is "/admin" with a fragment to it): DENY rules see that reading too.
describe('evaluate: an escaped "?" or "#" against a DENY on /admin and /admin/**', () => {
  const snap = snapshotOf(
    policy('api-allow', API, 'ALLOW', `    - from: ["${TD}/ns/ops/**"]\n`) +
      policy('api-deny-admin', API, 'DENY', `    - from: ["${INTERN}"]\n      to: { paths: ["/admin", "/admin/**"] }\n`),
  );
  test.each(['/admin%23x', '/admin%23', '/admin%3F', '/admin%3fdebug=1', '/admin%23/users', '/admin%3F/x', '/v1/../admin%23'])('%s is denied by the rule on the path before the escape', (path) => {
    expect(evaluate(snap, req({ from: INTERN, method: 'GET', path }))).toEqual(deny('api-deny-admin', 0));
  });
  test.each(['/tags/c%23', '/search%3Fq', '/admi%23n', '/adminx%3F', '/admin%2523', '/admin%253F'])('%s is not denied: the path before the escape is not under the rule', (path) => {
    expect(evaluate(snap, req({ from: INTERN, method: 'GET', path }))).toEqual(allow('api-allow', 0));
  });
  // Audit 60e F1: cut at the escape, "/admin/x/..%3F" was matched as "/admin/x/..", which such an app reads as "/admin".
  test.each(['/admin/x/..%3F', '/admin/x/..%3f', '/admin/.%23', '/admin/x/%2e%2e%3F', '/x/..%23/y', '/admin/x/.%3Fq'])('%s (a dot segment ended by an escaped "?" or "#") is refused as invalid_path', (path) => {
    expect(evaluate(snap, req({ from: INTERN, method: 'GET', path }))).toEqual(denied('invalid_path'));
  });
  test('ALLOW rules match the path as forwarded: an escape does not widen what they allow', () => {
    const s = snapshotOf(policy('api-allow', API, 'ALLOW', `    - from: ["${WEB}"]\n      to: { paths: ["/v1/**"] }\n`));
    expect(evaluate(s, req({ from: WEB, path: '/v1/a%23' }))).toEqual(allow('api-allow', 0));
    expect(evaluate(s, req({ from: WEB, path: '/v1%23/x' }))).toEqual(denied('no_matching_rule'));
  });
});

describe('evaluate: ordering', () => {
  test('policies are tried in name order, whatever their order in the input; rules in list order', () => {
    const b = policy('b-deny', API, 'DENY', `    - from: ["${WEB}"]\n`);
    const a = policy('a-deny', API, 'DENY', `    - from: ["${JOB}"]\n    - from: ["${TD}/ns/default/**"]\n`);
    const z = policy('z-allow', API, 'ALLOW', `    - from: ["${WEB}"]\n`);
    const y = policy('y-allow', API, 'ALLOW', `    - from: ["${OPS}"]\n    - from: ["${WEB}"]\n`);
    for (const text of [b + a + z + y, y + z + a + b]) {
      const s = snapshotOf(text);
      expect(s.policies.map((p) => p.name)).toEqual(['a-deny', 'b-deny', 'y-allow', 'z-allow']);
      expect(evaluate(s, req({ from: WEB }))).toEqual(deny('a-deny', 1));
    }
    const allows = snapshotOf(z + y);
    expect(evaluate(allows, req({ from: WEB }))).toEqual(allow('y-allow', 1));
  });
  test('ALLOW with no rules allows nothing; DENY with no rules denies nothing', () => {
    const empty = (name: string, action: 'ALLOW' | 'DENY') =>
      `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}}\nspec: {selector: "${API}", action: ${action}}\n---\n`;
    expect(evaluate(snapshotOf(empty('a', 'ALLOW')), req({}))).toEqual(denied('no_matching_rule'));
    expect(evaluate(snapshotOf(empty('d', 'DENY'), { defaultAction: 'allow' }), req({}))).toMatchObject({ allowed: true, reason: 'default_allow' });
  });
});

describe('evaluate: audit mode', () => {
  test.each<[string, string, PolicySnapshotOptions, Req, Decision]>([
    [
      'an audit DENY that matches never blocks, and is reported',
      BASE + policy('audit-deny-web', API, 'DENY', `    - from: ["${WEB}"]\n`, 'audit'),
      {},
      { ...L7, path: '/v1/items' },
      { ...allow('api-allow', 0), audit: { allowed: false, policy: 'audit-deny-web', rule: 0, reason: 'denied_by_rule' } },
    ],
    [
      'an audit ALLOW on an unprotected workload reports what it would allow',
      policy('new-allow', `${TD}/ns/x/sa/y`, 'ALLOW', `    - from: ["${WEB}"]\n`, 'audit'),
      {},
      { to: `${TD}/ns/x/sa/y` },
      { ...denied('no_policy', 'default'), audit: { allowed: true, policy: 'new-allow', rule: 0, reason: 'allowed_by_rule' } },
    ],
    [
      'rolling out an ALLOW under default allow: a caller it would refuse is reported, not blocked',
      policy('new-allow', `${TD}/ns/x/sa/y`, 'ALLOW', `    - from: ["${OPS}"]\n`, 'audit'),
      { defaultAction: 'allow' },
      { to: `${TD}/ns/x/sa/y` },
      { allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default', audit: { allowed: false, policy: null, rule: null, reason: 'no_matching_rule' } },
    ],
    [
      'an audit policy that agrees but decides first (by name) is reported',
      policy('a-audit', API, 'ALLOW', `    - from: ["${WEB}"]\n`, 'audit') + policy('b-enforce', API, 'ALLOW', `    - from: ["${WEB}"]\n`),
      {},
      {},
      { ...allow('b-enforce', 0), audit: { allowed: true, policy: 'a-audit', rule: 0, reason: 'allowed_by_rule' } },
    ],
    [
      'an audit DENY that does not match changes nothing and is not reported',
      BASE + policy('audit-deny-job', API, 'DENY', `    - from: ["${JOB}"]\n`, 'audit'),
      {},
      { ...L7, path: '/v1/items' },
      allow('api-allow', 0),
    ],
    [
      'an enforce DENY still wins over an audit ALLOW, and the audit pass agrees',
      BASE + policy('a-audit-allow', API, 'ALLOW', `    - from: ["${INTERN}"]\n`, 'audit'),
      {},
      { from: INTERN, path: '/admin/x' },
      deny('default-deny-admin', 0),
    ],
  ])('%s', (_name, yaml, opts, r, want) => {
    expect(evaluate(snapshotOf(yaml, opts), req(r))).toEqual(want);
  });
});

describe('evaluate: break-glass', () => {
  const grant: BreakGlassGrant = { id: 'inc-42', to: API, from: [`${TD}/ns/batch/**`], expiresAtMs: 10_000, reason: 'INC-42: policy blocks the nightly job', createdBy: 'alice' };
  const snap = snapshotOf(BASE, { breakGlass: [grant] });
  const bg: Decision = { allowed: true, policy: 'break-glass/inc-42', rule: null, reason: 'break_glass', mode: 'break-glass' };
  test.each<[string, Req, Decision]>([
    ['allows a caller no rule allows', { from: JOB, path: '/v2/x', nowMs: 9_999 }, bg],
    ['overrides a DENY policy', { from: JOB, path: '/admin/x', nowMs: 9_999 }, bg],
    ['expires at expiresAtMs (exclusive)', { from: JOB, path: '/admin/x', nowMs: 10_000 }, deny('default-deny-admin', 0)],
    ['only for the named callers', { from: INTERN, path: '/admin/x', nowMs: 1 }, deny('default-deny-admin', 0)],
    ['never for an unauthenticated caller', { from: null, path: '/v1/x', nowMs: 1 }, denied('unauthenticated')],
    ['only for the named destination', { from: JOB, to: `${TD}/ns/data/sa/db`, nowMs: 1 }, deny('db-deny-batch', 0)],
  ])('%s', (_name, r, want) => {
    expect(evaluate(snap, req(r))).toEqual(want);
  });
  test('withBreakGlass swaps grants and keeps the policies', () => {
    const without = snap.withBreakGlass([]);
    expect(without.policies).toBe(snap.policies);
    expect(without.version).not.toBe(snap.version);
    expect(evaluate(without, req({ from: JOB, path: '/v2/x' }))).toEqual(denied('no_matching_rule'));
    expect(evaluate(snap, req({ from: JOB, path: '/v2/x' }))).toEqual(bg);
  });
});
