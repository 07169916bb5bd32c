// `tessera policy check` as a user runs it: the built CLI against policy files in a temp dir.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, tessera } from '../helpers/run.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const WEB = 'spiffe://example.org/ns/default/sa/web';
const JOB = 'spiffe://example.org/ns/batch/sa/job';

const POLICIES = `apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-allow-web }
spec:
  selector: ${API}
  action: ALLOW
  rules:
    - from: [${WEB}, "spiffe://example.org/ns/batch/sa/*"]
      to: { ports: [15006], methods: [GET, POST], paths: ["/v1/*"] }
---
apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-deny-admin }
spec:
  selector: "spiffe://example.org/ns/default/sa/*"
  action: DENY
  rules:
    - from: ["spiffe://example.org/**"]
      to: { paths: ["/admin", "/admin/**"] }
---
apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-audit-deny-batch }
spec:
  selector: ${API}
  action: DENY
  mode: audit
  rules:
    - from: ["spiffe://example.org/ns/batch/**"]
`;

let tmp: { dir: string; cleanup: () => Promise<void> };
let good: string;
let bad: string;
let mounted: string;

beforeAll(async () => {
  tmp = await makeTempDir();
  good = join(tmp.dir, 'good');
  bad = join(tmp.dir, 'bad');
  await mkdir(good);
  await mkdir(bad);
  await writeFile(join(good, 'api.yaml'), POLICIES);
  await writeFile(join(good, 'README.md'), 'not a policy: ignored\n');
  await writeFile(join(bad, 'api.yaml'), POLICIES);
  // A ConfigMap volume as the kubelet lays it out (api.yaml -> ..data/api.yaml -> ..<generation>/api.yaml), with a
  // dotfile that is no policy (the proxy skips it too).
  mounted = join(tmp.dir, 'mounted');
  await mkdir(join(mounted, '..2026_01_01_00_00_00.1'), { recursive: true });
  await writeFile(join(mounted, '..2026_01_01_00_00_00.1', 'api.yaml'), POLICIES);
  await symlink('..2026_01_01_00_00_00.1', join(mounted, '..data'));
  await symlink(join('..data', 'api.yaml'), join(mounted, 'api.yaml'));
  await writeFile(join(mounted, '.editor-backup.yaml'), 'not: [valid');
  await writeFile(join(bad, 'typo.yml'), 'apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: typo }\nspec:\n  selector: spiffe://example.org/x\n  action: ALLOW\n  rules:\n    - from: [spiffe://example.org/a]\n      to: { port: [80] }\n');
});
afterAll(async () => {
  await tmp?.cleanup();
});

const check = (...args: string[]) => tessera(['policy', 'check', '--policies', good, ...args]);

describe.concurrent('tessera policy check', () => {
  test('allowed → exit 0 and the policy and rule', async () => {
    const r = await check('--from', WEB, '--to', API, '--port', '15006', '--method', 'GET', '--path', '/v1/items?x=1');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ALLOW by policy api-allow-web rule 0 (enforce)\n');
    expect(r.code).toBe(0);
  });
  test('denied → exit 1 with the reason; a traversal to /admin is caught', async () => {
    const r = await check('--from', WEB, '--to', API, '--port', '15006', '--method', 'GET', '--path', '/v1/../admin');
    expect(r.stdout).toBe('DENY by policy api-deny-admin rule 0 (enforce)\n');
    expect(r.code).toBe(1);
    const none = await check('--from', WEB, '--to', 'spiffe://example.org/ns/other/sa/db');
    expect(none.stdout).toBe('DENY: no policy selects spiffe://example.org/ns/other/sa/db (default deny)\n');
    expect(none.code).toBe(1);
  });
  test('--default allow opens destinations no ALLOW policy selects', async () => {
    const r = await check('--from', WEB, '--to', 'spiffe://example.org/ns/other/sa/db', '--default', 'allow', '--json');
    expect(JSON.parse(r.stdout)).toEqual({ allowed: true, policy: null, rule: null, reason: 'default_allow', mode: 'default' });
    expect(r.code).toBe(0);
  });
  test('--json prints exactly the decision fields, plus the audit outcome when there is one', async () => {
    const denied = await check('--from', WEB, '--to', API, '--protocol', 'tcp', '--port', '15006', '--json');
    expect(Object.keys(JSON.parse(denied.stdout))).toEqual(['allowed', 'policy', 'rule', 'reason', 'mode']);
    expect(JSON.parse(denied.stdout)).toEqual({ allowed: false, policy: 'api-deny-admin', rule: 0, reason: 'denied_by_rule', mode: 'enforce' });
    expect(denied.code).toBe(1);
    const audited = await check('--from', JOB, '--to', API, '--port', '15006', '--method', 'POST', '--path', '/v1/jobs', '--json');
    expect(JSON.parse(audited.stdout)).toEqual({
      allowed: true,
      policy: 'api-allow-web',
      rule: 0,
      reason: 'allowed_by_rule',
      mode: 'enforce',
      audit: { allowed: false, policy: 'api-audit-deny-batch', rule: 0, reason: 'denied_by_rule' },
    });
    expect(audited.code).toBe(0);
    const human = await check('--from', JOB, '--to', API, '--port', '15006', '--method', 'POST', '--path', '/v1/jobs');
    expect(human.stdout).toMatch(/^ALLOW by policy api-allow-web rule 0 \(enforce\)\naudit: .* DENY \(policy api-audit-deny-batch rule 0, denied_by_rule\); not enforced\n$/);
  });
  test('an invalid policy file → exit 1 with file:line:col and key on stderr, no decision', async () => {
    const r = await tessera(['policy', 'check', '--policies', bad, '--from', WEB, '--to', API, '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`TESSERA_ERR_POLICY_INVALID: ${join(bad, 'typo.yml')}:9:13: spec.rules[0].to.port: unknown key "port"`);
  });
  test('a ConfigMap-mounted directory is read as the proxy reads it: linked files count, dotfiles do not', async () => {
    const r = await tessera(['policy', 'check', '--policies', mounted, '--from', WEB, '--to', API, '--port', '15006', '--method', 'GET', '--path', '/v1/items']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ALLOW by policy api-allow-web rule 0 (enforce)\n');
    expect(r.code).toBe(0);
  });
  test.each([
    [['--from', WEB, '--to', API, '--bogus'], /unknown flag --bogus/],
    [['--from', 'spiffe://Example.org/web', '--to', API], /--from "spiffe:\/\/Example\.org\/web" is not a SPIFFE ID/],
    [['--from', WEB, '--to', 'api'], /--to "api" is not a SPIFFE ID/],
    [['--to', API], /exactly one of --from ID and --unauthenticated/],
    [['--from', WEB, '--to', API, '--port', '70000'], /--port must be a whole number from 1 to 65535, got "70000"/],
    [['--from', WEB, '--to', API, '--protocol', 'tcp', '--path', '/x'], /a tcp request has no --method or --path/],
    [['--from', WEB, '--to', API, '--default', 'maybe'], /--default must be allow or deny/],
  ])('usage error %j → exit 2', async (args, message) => {
    const r = await check(...args);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });
});
