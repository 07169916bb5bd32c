import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parsePolicyFiles, parsePolicyObject, parsePolicyYaml, policyToJson } from '../../../../common/policy/parse-policy.js';

const GOOD = `# policies for api
apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-allow-web }
spec:
  selector: spiffe://example.org/ns/default/sa/api
  action: ALLOW
  rules:
    - from: [spiffe://example.org/ns/default/sa/web, "spiffe://example.org/ns/batch/sa/*"]
      to: { ports: [15006], methods: [GET, POST], paths: ["/v1/*"] }
    - from: ["spiffe://example.org/ns/ops/**"]
---
---
# an empty document above is skipped
apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata:
  name: api-deny-batch
spec:
  selector: "spiffe://example.org/ns/*/sa/api"
  action: DENY
  mode: audit
  rules:
    - from: ["spiffe://example.org/ns/batch/**"]
      to: { paths: ["/admin/**"] }
`;

/** A valid document with one line replaced: the line numbers in expectations refer to this text. */
function doc(spec: string): string {
  return `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec:\n${spec}`;
}
const RULES = (rule: string) => doc(`  selector: spiffe://ex.org/a\n  action: ALLOW\n  rules:\n${rule}`);

function errorOf(fn: () => unknown): { code: string; message: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    if (isTesseraError(e)) return { code: e.code, message: e.message, details: e.details as Record<string, unknown> };
    throw e;
  }
  throw new Error('expected an error');
}

describe('parsePolicyYaml', () => {
  test('multi-document file: defaults, sources, frozen values', () => {
    const ps = parsePolicyYaml(GOOD, 'policies/api.yaml');
    expect(ps.map((p) => p.name)).toEqual(['api-allow-web', 'api-deny-batch']);
    expect(ps[0]).toEqual({
      name: 'api-allow-web',
      selector: 'spiffe://example.org/ns/default/sa/api',
      action: 'ALLOW',
      mode: 'enforce',
      rules: [
        { from: ['spiffe://example.org/ns/default/sa/web', 'spiffe://example.org/ns/batch/sa/*'], to: { ports: [15006], methods: ['GET', 'POST'], paths: ['/v1/*'] } },
        { from: ['spiffe://example.org/ns/ops/**'] },
      ],
      source: { file: 'policies/api.yaml', line: 2 },
    });
    expect(ps[1]!.mode).toBe('audit');
    expect(ps[1]!.source).toEqual({ file: 'policies/api.yaml', line: 15 });
    expect(Object.isFrozen(ps[0]!.rules[0]!.from)).toBe(true);
    expect(Object.isFrozen(ps[0])).toBe(true);
  });
  test('rules default to none; an empty or comment-only file holds no policy', () => {
    expect(parsePolicyYaml(doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n'), 'f.yaml')[0]!.rules).toEqual([]);
    expect(parsePolicyYaml('', 'f.yaml')).toEqual([]);
    expect(parsePolicyYaml('# nothing\n---\n', 'f.yaml')).toEqual([]);
  });

  test.each([
    ['unknown top-level key', 'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {selector: "spiffe://ex.org/a", action: ALLOW}\nstatus: {}\n', /^f\.yaml:5:1: status: unknown key "status"/],
    ['wrong apiVersion', 'apiVersion: tessera.dev/v2\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {selector: "spiffe://ex.org/a", action: ALLOW}\n', /^f\.yaml:1:13: apiVersion: must be one of tessera\.dev\/v1/],
    ['wrong kind', 'apiVersion: tessera.dev/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {selector: "spiffe://ex.org/a", action: ALLOW}\n', /^f\.yaml:2:7: kind: must be one of AuthorizationPolicy/],
    ['missing metadata.name', 'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {}\nspec: {selector: "spiffe://ex.org/a", action: ALLOW}\n', /^f\.yaml:3:11: metadata\.name: is required/],
    ['upper-case name', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n').replace('name: p', 'name: Api'), /^f\.yaml:4:9: metadata\.name: "Api" is not a valid name/],
    ['name ending in "-"', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n').replace('name: p', 'name: api-'), /metadata\.name: "api-" is not a valid name/],
    ['name too long', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n').replace('name: p', `name: ${'a'.repeat(254)}`), /metadata\.name: .* longer than 253/],
    ['unknown metadata key (source is JSON-only)', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n').replace('name: p', 'name: p\n  namespace: x'), /^f\.yaml:5:3: metadata\.namespace: unknown key/],
    ['missing selector', doc('  action: ALLOW\n'), /^f\.yaml:6:3: spec\.selector: is required/],
    ['bad selector pattern', doc('  selector: spiffe://ex.org/ns/a*\n  action: ALLOW\n'), /^f\.yaml:6:13: spec\.selector: "spiffe:\/\/ex\.org\/ns\/a\*" is not a SPIFFE ID pattern/],
    ['selector in another scheme', doc('  selector: https://ex.org/a\n  action: ALLOW\n'), /spec\.selector: .* is not a SPIFFE ID pattern/],
    ['missing action', doc('  selector: spiffe://ex.org/a\n'), /^f\.yaml:6:3: spec\.action: is required/],
    ['lower-case action', doc('  selector: spiffe://ex.org/a\n  action: allow\n'), /^f\.yaml:7:11: spec\.action: must be one of ALLOW, DENY \(got "allow"\)/],
    ['bad mode', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n  mode: dryrun\n'), /^f\.yaml:8:9: spec\.mode: must be one of enforce, audit/],
    ['unknown spec key', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n  rulez: []\n'), /^f\.yaml:8:3: spec\.rulez: unknown key "rulez"/],
    ['rules not a list', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n  rules: {from: []}\n'), /^f\.yaml:8:10: spec\.rules: must be a list/],
    ['rule without from', RULES('    - to: { ports: [80] }\n'), /^f\.yaml:9:7: spec\.rules\[0\]\.from: is required/],
    ['empty from', RULES('    - from: []\n'), /^f\.yaml:9:13: spec\.rules\[0\]\.from: needs at least 1 item/],
    ['bad from pattern (line and column of the item)', RULES('    - from: [spiffe://ex.org/a, "spiffe://ex.org/**/x"]\n'), /^f\.yaml:9:33: spec\.rules\[0\]\.from\[1\]: "spiffe:\/\/ex\.org\/\*\*\/x" is not a SPIFFE ID pattern/],
    ['from over 2048 bytes (SPIFFE-ID §2.3)', RULES(`    - from: ["spiffe://ex.org/${'a'.repeat(2049 - 15)}"]\n`), /^f\.yaml:9:14: spec\.rules\[0\]\.from\[0\]: ".*" is not a SPIFFE ID pattern or "unauthenticated" \(TESSERA_ERR_SPIFFE_ID_TOO_LONG: /],
    ['selector over 2048 bytes', doc(`  selector: spiffe://ex.org/${'a'.repeat(2049 - 15)}\n  action: ALLOW\n`), /^f\.yaml:6:13: spec\.selector: ".*" is not a SPIFFE ID pattern \(TESSERA_ERR_SPIFFE_ID_TOO_LONG: /],
    ['from with a trailing slash', RULES('    - from: ["spiffe://ex.org/a/"]\n'), /^f\.yaml:9:14: spec\.rules\[0\]\.from\[0\]: "spiffe:\/\/ex\.org\/a\/" is not a SPIFFE ID pattern or "unauthenticated" \(TESSERA_ERR_SPIFFE_ID_EMPTY_SEGMENT: /],
    ['from item not a string', RULES('    - from: [{a: 1}]\n'), /spec\.rules\[0\]\.from\[0\]: must be a string/],
    ['unknown rule key', RULES('    - from: [spiffe://ex.org/a]\n      when: {}\n'), /^f\.yaml:10:7: spec\.rules\[0\]\.when: unknown key/],
    ['unknown to key', RULES('    - from: [spiffe://ex.org/a]\n      to: { hosts: [x] }\n'), /^f\.yaml:10:13: spec\.rules\[0\]\.to\.hosts: unknown key/],
    ['port 0', RULES('    - from: [spiffe://ex.org/a]\n      to: { ports: [0] }\n'), /spec\.rules\[0\]\.to\.ports\[0\]: must be >= 1/],
    ['port 70000', RULES('    - from: [spiffe://ex.org/a]\n      to: { ports: [443, 70000] }\n'), /^f\.yaml:10:26: spec\.rules\[0\]\.to\.ports\[1\]: must be <= 65535/],
    ['port as a string', RULES('    - from: [spiffe://ex.org/a]\n      to: { ports: ["443"] }\n'), /to\.ports\[0\]: must be a number/],
    ['fractional port', RULES('    - from: [spiffe://ex.org/a]\n      to: { ports: [44.5] }\n'), /to\.ports\[0\]: must be an integer/],
    ['empty ports', RULES('    - from: [spiffe://ex.org/a]\n      to: { ports: [] }\n'), /to\.ports: needs at least 1 item/],
    ['lower-case method', RULES('    - from: [spiffe://ex.org/a]\n      to: { methods: [get] }\n'), /to\.methods\[0\]: "get" is not an upper-case HTTP method/],
    ['method with a space', RULES('    - from: [spiffe://ex.org/a]\n      to: { methods: ["GET POST"] }\n'), /to\.methods\[0\]: "GET POST" is not an upper-case HTTP method/],
    ['relative path', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["v1/*"] }\n'), /to\.paths\[0\]: "v1\/\*" is not a path pattern/],
    ['"**" not last', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/a/**/b"] }\n'), /to\.paths\[0\]: "\/a\/\*\*\/b" is not a path pattern/],
    ['partial "*"', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/v1/item*"] }\n'), /to\.paths\[0\]: .* is not a path pattern/],
    ['path with dot segments', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/v1/../admin"] }\n'), /to\.paths\[0\]: "\/v1\/\.\.\/admin" is not a normalized path \(write "\/admin"\)/],
    ['path with "//"', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/a//b"] }\n'), /is not a normalized path \(write "\/a\/b"\)/],
    ['path with an encoded slash', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/a%2Fb"] }\n'), /"\/a%2Fb" is not a normalized path: it could never match/],
    ['path with a query', RULES('    - from: [spiffe://ex.org/a]\n      to: { paths: ["/a?b=1"] }\n'), /a path pattern has no query/],
    ['document is not a mapping', 'just a string\n', /^f\.yaml:1:1: \(top level\): must be a mapping/],
    ['YAML syntax error', doc('  selector: [spiffe://ex.org/a\n  action: ALLOW\n'), /^f\.yaml:\d+:\d+: \(yaml\): /],
    // Named by its full path (audit 61d: the leaf alone).
    ['duplicate key', doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n  action: DENY\n'), /^f\.yaml:8:3: \(yaml\): the key spec\.action appears twice in the same map/],
    ['nested deeper than 64 levels', `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, /^f\.yaml:1:\d+: \(yaml\): nested deeper than 64 levels of maps and lists/],
  ])('%s → TESSERA_ERR_POLICY_INVALID naming file:line:col and key', (_kind, text, message) => {
    const e = errorOf(() => parsePolicyYaml(text, 'f.yaml'));
    expect(e.code).toBe('TESSERA_ERR_POLICY_INVALID');
    expect(e.message).toMatch(message);
    expect(e.details['file']).toBe('f.yaml');
    expect(typeof e.details['line']).toBe('number');
  });

  test('every problem of a file is listed, and one bad document rejects the whole file', () => {
    const text = `${GOOD}---\n${doc('  selector: spiffe://ex.org/a\n  action: allow\n  mode: x\n')}`;
    const e = errorOf(() => parsePolicyYaml(text, 'f.yaml'));
    expect(e.message.split('\n')).toEqual([
      expect.stringMatching(/^f\.yaml:33:11: spec\.action: must be one of ALLOW, DENY/),
      expect.stringMatching(/^f\.yaml:34:9: spec\.mode: must be one of enforce, audit/),
    ]);
  });
  test('one name twice in a file is TESSERA_ERR_POLICY_DUPLICATE_NAME naming both lines', () => {
    const one = doc('  selector: spiffe://ex.org/a\n  action: ALLOW\n');
    const e = errorOf(() => parsePolicyYaml(`${one}---\n${one}`, 'f.yaml'));
    expect(e.code).toBe('TESSERA_ERR_POLICY_DUPLICATE_NAME');
    expect(e.message).toBe('f.yaml:12:9: metadata.name: policy "p" is already defined at f.yaml:4');
  });
});

describe('parsePolicyFiles', () => {
  const named = (name: string, selector = 'spiffe://ex.org/a') => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}}\nspec: {selector: "${selector}", action: ALLOW}\n`;
  test('a bad file contributes no policy and one error; good files still load, in path order', () => {
    const r = parsePolicyFiles([
      { path: 'p/c.yaml', text: named('c') },
      { path: 'p/b.yaml', text: `${named('b1')}---\n${named('B2')}` },
      { path: 'p/a.yaml', text: named('a') },
    ]);
    expect(r.policies.map((p) => p.name)).toEqual(['a', 'c']);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.code).toBe('TESSERA_ERR_POLICY_INVALID');
    expect(r.errors[0]!.message).toMatch(/^p\/b\.yaml:8:18: metadata\.name: "B2" is not a valid name/);
  });
  test('a name defined in two files is an error naming both; the later file contributes no policy', () => {
    const r = parsePolicyFiles([
      { path: 'p/b.yaml', text: `${named('x')}---\n${named('shared')}` },
      { path: 'p/a.yaml', text: named('shared') },
    ]);
    expect(r.policies.map((p) => p.name)).toEqual(['shared']);
    expect(r.policies[0]!.source).toEqual({ file: 'p/a.yaml', line: 1 });
    expect(r.errors.map((e) => [e.code, e.message])).toEqual([
      ['TESSERA_ERR_POLICY_DUPLICATE_NAME', 'p/b.yaml:6: metadata.name: policy "shared" is already defined at p/a.yaml:1'],
    ]);
  });
});

describe('JSON form', () => {
  const policies = parsePolicyYaml(GOOD, 'policies/api.yaml');
  test('policyToJson → parsePolicyObject round-trips, with and without source', () => {
    for (const p of policies) {
      const json = policyToJson(p);
      expect(parsePolicyObject(JSON.parse(json))).toEqual(p);
      expect(policyToJson(parsePolicyObject(JSON.parse(json)))).toBe(json);
      const { source: _s, ...bare } = p;
      expect(parsePolicyObject(JSON.parse(policyToJson(bare)))).toEqual(bare);
    }
  });
  test('the JSON text is stable: fixed key order, no whitespace', () => {
    expect(policyToJson({ name: 'n', selector: 'spiffe://ex.org/a', action: 'DENY', mode: 'audit', rules: [{ from: ['spiffe://ex.org/b'], to: { paths: ['/x'], ports: [1] } }] })).toBe(
      '{"apiVersion":"tessera.dev/v1","kind":"AuthorizationPolicy","metadata":{"name":"n"},"spec":{"selector":"spiffe://ex.org/a","action":"DENY","mode":"audit","rules":[{"from":["spiffe://ex.org/b"],"to":{"ports":[1],"paths":["/x"]}}]}}',
    );
  });
  test('the flat AuthorizationPolicy shape is accepted too; mode defaults to enforce', () => {
    expect(parsePolicyObject({ name: 'f', selector: 'spiffe://ex.org/a', action: 'ALLOW', rules: [{ from: ['spiffe://ex.org/*'] }] })).toEqual({
      name: 'f',
      selector: 'spiffe://ex.org/a',
      action: 'ALLOW',
      mode: 'enforce',
      rules: [{ from: ['spiffe://ex.org/*'] }],
    });
  });
  test('the source argument prefixes errors and becomes the policy source', () => {
    const obj = JSON.parse(policyToJson(policies[0]!));
    expect(parsePolicyObject(obj, { file: 'grpc', line: 3 }).source).toEqual({ file: 'grpc', line: 3 });
    obj.spec.rules[0].to.ports = [0];
    obj.spec.extra = true;
    const e = errorOf(() => parsePolicyObject(obj, { file: 'cp', line: 7 }));
    expect(e.code).toBe('TESSERA_ERR_POLICY_INVALID');
    expect(e.message.split('\n').sort()).toEqual(['cp:7: spec.extra: unknown key "extra" (known: selector, action, mode, rules)', 'cp:7: spec.rules[0].to.ports[0]: must be >= 1']);
  });
  test.each([
    [null, /policy: \(top level\): must be a mapping/],
    [[], /policy: \(top level\): must be a mapping/],
    ['x', /policy: \(top level\): must be a mapping/],
    [{ name: 'f', selector: 'spiffe://ex.org/a', action: 'ALLOW', rules: [{ from: 'spiffe://ex.org/b' }] }, /policy: rules\[0\]\.from: must be a list/],
    [{ apiVersion: 'tessera.dev/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a' }, spec: { selector: 'spiffe://ex.org/a', action: 'ALLOW', mode: 'enforce', rules: [{ from: ['x'] }] } }, /spec\.rules\[0\]\.from\[0\]: "x" is not a SPIFFE ID pattern/],
    [{ apiVersion: 'tessera.dev/v1', metadata: { name: 'a', source: { file: 'f', line: 0 } }, spec: {} }, /kind: is required/],
  ])('bad object %j is refused', (obj, message) => {
    const e = errorOf(() => parsePolicyObject(obj));
    expect(e.code).toBe('TESSERA_ERR_POLICY_INVALID');
    expect(e.message).toMatch(message);
  });
});
