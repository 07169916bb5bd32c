// `tessera inject` (the built CLI, a real child process) keeps each scalar's type (audit 38g): strings the manifest
// quotes that YAML 1.1 or kubectl read as booleans or numbers ("yes", "on", "0X1F", "017", "1:20") came out plain,
// so `kubectl apply` refused an env value or turned a label's type. Read back by YAML 1.1 and 1.2, and by kubectl
// itself where it is installed (`kubectl label --local`, the reader of `kubectl apply -f`), they are the same
// strings; and a plain scalar means to kubectl in the output what it meant in the input.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { TEST_CONFIG, testBundlePem } from '../helpers/injector-fixtures.js';
import { hasKubectl } from '../helpers/kubectl.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';

/** One of each class: YAML 1.1 booleans, booleans and nulls in other cases, numbers in YAML 1.1 and Go forms, timestamps. */
const STRINGS = ['yes', 'no', 'on', 'off', 'y', 'N', 'True', 'FALSE', 'null', '~', '0x1F', '0X1F', '0o17', '+0o17', '017', '1_000', '1:20', '.inf', '1e3', '2001-12-14'];
const q = (s: string) => JSON.stringify(s);
const each = (f: (s: string, i: number) => string) => STRINGS.map(f).join('');

const MANIFEST = [
  'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata:\n',
  `      labels:\n        app: web\n${each((s, i) => `        l${i}: ${q(s)}\n`)}`,
  `      annotations:\n${each((s, i) => `        a${i}: ${q(s)}\n`)}`,
  '    spec:\n      containers:\n        - name: app\n          image: app:1\n',
  `          args: [${STRINGS.map(q).join(', ')}]\n`,
  `          env:\n${each((s, i) => `            - {name: E${i}, value: ${q(s)}}\n`)}`,
  // Quoted and plain: the plain ones are whatever kubectl makes of them, in the output as in the input (but .inf,
  // which kubectl refuses to turn into JSON).
  `---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n${each((s, i) => `  q${i}: ${q(s)}\n${s === '.inf' ? '' : `  p${i}: ${s}\n`}`)}`,
].join('');

interface Template {
  metadata: { labels: Record<string, unknown>; annotations: Record<string, unknown> };
  spec: { containers: { name: string; args: unknown[]; env: { value: unknown }[] }[] };
}
type Objects = [{ spec: { template: Template } }, { data: Record<string, unknown> }];

/** What the app's parts of the pod template and the ConfigMap's quoted values hold, in order. */
function strings([deployment, cm]: Objects): Record<string, unknown[]> {
  const t = deployment.spec.template;
  const app = t.spec.containers.find((c) => c.name === 'app')!;
  return {
    labels: STRINGS.map((_, i) => t.metadata.labels[`l${i}`]),
    annotations: STRINGS.map((_, i) => t.metadata.annotations[`a${i}`]),
    args: app.args,
    // The injector's own variables come after the app's.
    env: app.env.slice(0, STRINGS.length).map((e) => e.value),
    configMap: STRINGS.map((_, i) => cm.data[`q${i}`]),
  };
}
const expected = { labels: STRINGS, annotations: STRINGS, args: STRINGS, env: STRINGS, configMap: STRINGS };

let dir: string;
let cleanup: () => Promise<void>;
let output: string;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
  await writeFile(join(dir, 'in.yaml'), MANIFEST);
  const r = await tessera(['inject', '-f', join(dir, 'in.yaml'), '--bundle', join(dir, 'bundle.pem'), '--image', TEST_CONFIG.proxyImage]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('tessera inject: document 1 Deployment web: injected\ntessera inject: document 2 ConfigMap c: passed-through\n');
  output = r.stdout;
  await writeFile(join(dir, 'out.yaml'), output);
});
afterAll(async () => cleanup?.());

describe('tessera inject output: quoted strings stay strings (audit 38g)', () => {
  test.each([
    ['YAML 1.1', '1.1'],
    ['YAML 1.2', '1.2'],
  ] as const)('read as %s: env values, labels, annotations, args and ConfigMap values are the strings the input quoted', (_name, version) => {
    expect(strings(parseAllDocuments(output, { version }).map((d) => d.toJS()) as Objects)).toEqual(expected);
  });

  test('they are written quoted', () => {
    for (const s of STRINGS) expect(output).toContain(`value: ${q(s)}\n`);
  });
});

/** The objects of a file as `kubectl apply -f` decodes them (sigs.k8s.io/yaml over go-yaml v2), without a cluster. */
async function kubectlReads(file: string): Promise<Objects> {
  const r = await run('kubectl', ['label', '--local', '-f', file, '-o', 'json', 'tessera-test=read'], { env: { ...process.env, KUBECONFIG: join(dir, 'no-kubeconfig') } });
  expect(r.code, r.stderr).toBe(0);
  // One JSON object per document, one after the other.
  return r.stdout.split(/^(?=\{$)/m).map((o) => JSON.parse(o)) as Objects;
}

describe.skipIf(!hasKubectl())('read by kubectl itself (where it is installed)', () => {
  test('the quoted strings are strings to kubectl: no env value is a boolean, as `kubectl apply` refused', async () => {
    expect(strings(await kubectlReads(join(dir, 'out.yaml')))).toEqual(expected);
  });

  test('every ConfigMap value, quoted or plain, is to kubectl in the output what it was in the input (yes is true, 017 is 15)', async () => {
    const [, before] = await kubectlReads(join(dir, 'in.yaml'));
    const [, after] = await kubectlReads(join(dir, 'out.yaml'));
    expect(before.data.p0).toBe(true);
    expect(before.data[`p${STRINGS.indexOf('017')}`]).toBe(15);
    expect(after.data).toEqual(before.data);
  });
});
