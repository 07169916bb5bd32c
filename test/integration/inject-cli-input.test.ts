// `tessera inject` (the built CLI, a real child process) on the inputs of audit 38b: mirror pods are skipped with a
// warning, as the webhook skips them; an outbound local port a container declares, or a tracing endpoint that is not
// an http(s) URL usable as written, exits 1 with the webhook's code; YAML is read as kubectl reads it (any *List,
// merge keys, UTF-8 only) and every refusal of it (aliases, encoding) carries a TESSERA_ERR_ code.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TEST_CONFIG, testBundlePem } from '../helpers/injector-fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
});
afterAll(async () => cleanup?.());

/** Writes `text` (or bytes) as a manifest and runs `tessera inject -f` on it. */
async function inject(name: string, text: string | Buffer) {
  const file = join(dir, name);
  await writeFile(file, text);
  const r = await tessera(['inject', '-f', file, '--bundle', join(dir, 'bundle.pem'), '--image', TEST_CONFIG.proxyImage]);
  return { ...r, sidecars: r.stdout.split('\n').filter((l) => /name: tessera-proxy$/.test(l.trim())).length };
}

const pod = (name: string, extra = '') => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n${extra}spec:\n  containers:\n    - name: app\n      image: app:1\n`;

describe('mirror pods (audit 38b, F3)', () => {
  test('a mirror pod, as kubectl get -o yaml shows one, is skipped with a warning; the pod beside it is injected', async () => {
    const mirror = pod(
      'etcd-node-1',
      '  annotations:\n    kubernetes.io/config.mirror: abc123\n    kubernetes.io/config.source: file\n  ownerReferences:\n    - {apiVersion: v1, kind: Node, name: node-1, uid: n1, controller: true}\n',
    );
    const r = await inject('mirror.yaml', `${mirror}---\n${pod('web')}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('document 1 Pod etcd-node-1: skipped: mirror-pod');
    expect(r.stderr).toContain('warning: tessera: pod is a static pod or its mirror (annotation kubernetes.io/config.mirror) and was not injected');
    expect(r.stderr).toContain('document 2 Pod web: injected');
    const [first, second] = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(first.spec.initContainers).toBeUndefined();
    expect(second.spec.initContainers[0].name).toBe('tessera-proxy');
    expect(r.sidecars).toBe(1);
  });
});

describe('outbound local ports (audit 38b, F5)', () => {
  test('a local port the pod template of a Deployment declares exits 1 naming the annotation and the container', async () => {
    const deployment = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: web}',
      'spec:',
      '  selector: {matchLabels: {app: web}}',
      '  template:',
      '    metadata:',
      '      labels: {app: web}',
      '      annotations: {tessera.dev/outbound: "api=spiffe://cluster.local/ns/a/sa/api@api.a.svc:15006;local=8080"}',
      '    spec:',
      '      initContainers: [{name: metrics, image: m:1, restartPolicy: Always, ports: [{containerPort: 9102}]}]',
      '      containers: [{name: app, image: app:1, ports: [{containerPort: 8080}]}]',
      '',
    ].join('\n');
    const r = await inject('local-port.yaml', deployment);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_INJECT_BAD_ANNOTATION: document 1 (Deployment web): annotation tessera.dev/outbound: upstream "api": local port 8080 is already used by container "app"');
    expect(r.stdout).toBe('');
    // The native sidecar's port too; another local port is injected.
    expect((await inject('local-port-2.yaml', deployment.replace('local=8080', 'local=9102'))).stderr).toContain('local port 9102 is already used by container "metrics"');
    const ok = await inject('local-port-3.yaml', deployment.replace('local=8080', 'local=9000'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.sidecars).toBe(1);
  });
});

describe('tracing endpoints (audit 38b, F8)', () => {
  test.each([
    ['a newline', '"http://x:4318/v1/traces\\nadmin:\\n  listen: 0.0.0.0:1"', 'holds U+000A'],
    ['a tab', '"http://x:4318/v1/\\ttraces"', 'holds U+0009'],
    ['a space', '"http://x:4318/v1/ traces"', 'holds U+0020'],
    ['port 0', 'http://x:0/v1/traces', 'has port 0'],
  ])('%s in tessera.dev/tracing-endpoint exits 1 with TESSERA_ERR_INJECT_BAD_ANNOTATION', async (_what, value, problem) => {
    const r = await inject('tracing.yaml', pod('traced', `  annotations:\n    tessera.dev/tracing-endpoint: ${value}\n`));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('TESSERA_ERR_INJECT_BAD_ANNOTATION: document 1 (Pod traced): annotation tessera.dev/tracing-endpoint: "http://x:');
    expect(r.stderr).toContain(problem);
    expect(r.stdout).toBe('');
  });
});

describe('YAML kubectl reads, and refusals with a code (audit 38b, F4, F6)', () => {
  // w, not the audit's y: kubectl reads a plain y as true and refuses the label (so does tessera inject now).
  const labelled = 'apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {x: &v w}}\nspec:\n  containers: [{name: app, image: x}]\n';

  test('aliases: 101 uses of one anchor are injected; a recursive alias and a billion laughs exit 1 with a code', async () => {
    const many = await inject('alias101.yaml', `${labelled}  z: [${Array(101).fill('*v').join(',')}]\n`);
    expect(many.code, many.stderr).toBe(0);
    expect(many.sidecars).toBe(1);
    const rec = await inject('rec.yaml', `${labelled}  x: &a [1, *a]\n`);
    expect(rec.code).toBe(1);
    expect(rec.stderr).toBe('tessera inject: TESSERA_ERR_INJECT_NOT_A_POD: document 1: alias *a is inside its own anchor (a recursive alias): the document has no finite value\n');
    const levels = 'abcdefghij'.split('');
    const lol = levels.map((l, i) => `    ${l}: &${l} [${Array(10).fill(i === 0 ? 'x' : `*${levels[i - 1]}`).join(',')}]`).join('\n');
    const laughs = await inject('lol.yaml', `${labelled}  extra:\n${lol}\n`);
    expect(laughs.code).toBe(1);
    expect(laughs.stderr).toMatch(/^tessera inject: TESSERA_ERR_INJECT_NOT_A_POD: document 1: its aliases expand to more than \d+ nodes/);
    expect(laughs.stdout).toBe('');
  });

  test('a PodList holding a Deployment and a nested List: both pods injected', async () => {
    const list = [
      'apiVersion: v1',
      'kind: PodList',
      'items:',
      '  - apiVersion: apps/v1',
      '    kind: Deployment',
      '    metadata: {name: d}',
      '    spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: app, image: x}]}}}',
      '  - apiVersion: v1',
      '    kind: List',
      '    items:',
      '      - apiVersion: v1',
      '        kind: Pod',
      '        metadata: {name: nested}',
      '        spec: {containers: [{name: app, image: x}]}',
      '',
    ].join('\n');
    const r = await inject('podlist.yaml', list);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('tessera inject: document 1 Deployment d: injected\ntessera inject: document 1 Pod nested: injected\n');
    expect(r.sidecars).toBe(2);
  });

  test('a merge key (<<) is resolved: the container keeps its name and is injected', async () => {
    const r = await inject('merge.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: mk}\nspec:\n  containers:\n    - <<: {name: app, image: x}\n      ports: [{containerPort: 8080}]\n');
    expect(r.code, r.stderr).toBe(0);
    const [pod] = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(pod.spec.containers[0]).toMatchObject({ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] });
    expect(r.sidecars).toBe(1);
  });

  test('a Latin-1 byte exits 1 naming the line (it became U+FFFD); UTF-16 is named as such', async () => {
    const latin1 = Buffer.concat([Buffer.from('apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {x: "caf'), Buffer.from([0xe9]), Buffer.from('"}}\nspec:\n  containers: [{name: app, image: nginx}]\n')]);
    const r = await inject('latin1.yaml', latin1);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tessera inject: TESSERA_ERR_INJECT_NOT_A_POD: the manifest is not UTF-8 text: line 3 holds bytes that are not UTF-8 (Latin-1? convert it with iconv -t UTF-8)\n');
    expect(r.stdout).not.toContain('\ufffd');
    const utf16 = await inject('utf16.yaml', Buffer.from(`\ufeff${pod('p')}`, 'utf16le'));
    expect(utf16.code).toBe(1);
    expect(utf16.stderr).toContain('TESSERA_ERR_INJECT_NOT_A_POD: the manifest is not UTF-8 text: it starts with a UTF-16 byte-order mark');
  });
});
