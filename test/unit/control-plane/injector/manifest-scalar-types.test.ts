// `tessera inject` keeps every scalar's type for every reader (audit 38g): a string the input quoted ("yes", "0x1F",
// "1:20") came out plain, and kubectl (go-yaml v2, YAML 1.1 booleans) read a boolean or a number; now it comes out
// quoted, and parsed by YAML 1.1, YAML 1.2 and kubectl's rules it is the same string. Plain scalars are read as
// kubectl reads them (hostNetwork: yes is true, 017 is 15), and the proxy's config annotation still round-trips.

import { describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { injectManifests } from '../../../../control-plane/src/injector/manifest-inject.js';
import { readManifest } from '../../../../control-plane/src/injector/manifest-yaml.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { testContext } from '../../../helpers/injector-fixtures.js';

const ctx = await testContext();

/** Each class of text some YAML reader takes for something else, as an input the manifest quotes. */
const AMBIGUOUS: Readonly<Record<string, readonly string[]>> = {
  'YAML 1.1 booleans': ['yes', 'no', 'on', 'off', 'y', 'n', 'Y', 'N', 'Yes', 'NO', 'On', 'OFF'],
  'booleans in any case': ['true', 'True', 'TRUE', 'false', 'False', 'FALSE'],
  nulls: ['null', 'Null', 'NULL', '~'],
  hexadecimal: ['0x1F', '0X1F', '-0x1f'],
  octal: ['0o17', '+0o17', '0O17', '017', '-017'],
  binary: ['0b101', '0B101', '-0b101'],
  'underscores in numbers': ['1_000', '+_1', '1e1_0', '1_000.5'],
  sexagesimal: ['1:20', '-1:20:30', '1:20.5'],
  'infinities and NaN': ['.inf', '-.Inf', '+.INF', '.nan', '.NaN'],
  'decimal forms': ['1e3', '1.', '.5', '08', '+1', '-0', '42'],
  timestamps: ['2001-12-14', '2001-12-14t21:59:43.10-05:00'],
};
const ALL = Object.values(AMBIGUOUS).flat();
const q = (s: string) => JSON.stringify(s);

/** A Pod carrying `values` (quoted) as env values, label and annotation values, command args; and a ConfigMap with them as keys and values. */
function manifest(values: readonly string[]): string {
  const map = (indent: string) => values.map((v, i) => `${indent}k${i}: ${q(v)}\n`).join('');
  return [
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n',
    `  labels:\n${map('    ')}  annotations:\n${map('    ')}`,
    'spec:\n  containers:\n    - name: app\n      image: app:1\n',
    `      command: [${values.map(q).join(', ')}]\n`,
    `      env:\n${values.map((v, i) => `        - name: E${i}\n          value: ${q(v)}\n`).join('')}`,
    '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n',
    values.map((v) => `  ${q(v)}: ${q(v)}\n`).join(''),
  ].join('');
}

interface Read {
  readonly labels: Record<string, unknown>;
  readonly annotations: Record<string, unknown>;
  readonly command: unknown[];
  readonly env: unknown[];
  readonly data: Record<string, unknown>;
}
function fields(docs: unknown[]): Read {
  const [pod, cm] = docs as [
    { metadata: { labels: Record<string, unknown>; annotations: Record<string, unknown> }; spec: { containers: { name: string; command: unknown[]; env: { value: unknown }[] }[] } },
    { data: Record<string, unknown> },
  ];
  const app = pod.spec.containers.find((c) => c.name === 'app')!;
  return { labels: pod.metadata.labels, annotations: pod.metadata.annotations, command: app.command, env: app.env.map((e) => e.value), data: cm.data };
}

const READERS: Readonly<Record<string, (text: string) => unknown[]>> = {
  'YAML 1.1 (the yaml library, version 1.1)': (t) => parseAllDocuments(t, { version: '1.1' }).map((d) => d.toJS()),
  'YAML 1.2 (the yaml library, core schema)': (t) => parseAllDocuments(t).map((d) => d.toJS()),
  "kubectl's rules (go-yaml v2, as tessera inject reads)": readManifest,
};

describe('a string the input quoted stays a string for every reader (audit 38g)', () => {
  const { output, reports } = injectManifests(manifest(ALL), ctx);

  test('the pod is injected and the ConfigMap passes through', () => {
    expect(reports.map((r) => r.result)).toEqual(['injected', 'passed-through']);
  });

  for (const [reader, read] of Object.entries(READERS)) {
    test.each(Object.entries(AMBIGUOUS))(`%s, read by ${reader}: env value, label, annotation, command arg, ConfigMap key and value`, (_cls, values) => {
      const got = fields(read(output));
      for (const v of values) {
        const i = ALL.indexOf(v);
        expect(got.env[i], `env E${i} ${q(v)}`).toBe(v);
        expect(got.labels[`k${i}`], `label ${q(v)}`).toBe(v);
        expect(got.annotations[`k${i}`], `annotation ${q(v)}`).toBe(v);
        expect(got.command[i], `arg ${q(v)}`).toBe(v);
        expect(got.data[v], `ConfigMap key and value ${q(v)}`).toBe(v);
      }
    });
  }

  test('written with quotes, as kubectl needs them (`value: yes` is a boolean to kubectl: its apply refused the EnvVar)', () => {
    for (const line of ['value: "yes"', '- "on"', 'k0: "yes"', '"0X1F": "0X1F"', '"1:20": "1:20"', '"017": "017"', '"1_000": "1_000"']) expect(output).toContain(line);
  });

  test('numbers and booleans stay as they were, and so does text no reader misreads', () => {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    version: 1.2.3\n    tier: web\nspec:\n  hostNetwork: false\n  terminationGracePeriodSeconds: 30\n  containers:\n    - name: app\n      image: app:1\n      args:\n        - --port=8080\n        - spiffe://cluster.local/ns/on/sa/yes\n      ports:\n        - containerPort: 8080\n      resources:\n        requests:\n          cpu: 0.5\n      securityContext:\n        readOnlyRootFilesystem: true\n';
    const out = injectManifests(pod, ctx).output;
    for (const line of ['version: 1.2.3', 'hostNetwork: false', 'terminationGracePeriodSeconds: 30', '- --port=8080', '- spiffe://cluster.local/ns/on/sa/yes', 'containerPort: 8080', 'cpu: 0.5', 'readOnlyRootFilesystem: true']) expect(out).toContain(`${line}\n`);
  });
});

describe('plain scalars are read as kubectl reads them (audit 38g)', () => {
  test('YAML 1.1 booleans (keys too), go-yaml numbers; sexagesimal, timestamps and "." stay text: the output means to kubectl what the input did', () => {
    // The text ones come out quoted, as YAML 1.1 would misread them (1:20 is 80 there, "." NaN).
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: yes\n  b: off\n  c: y\n  d: 017\n  e: 0X1F\n  f: +0o17\n  g: 1_000\n  h: 1e1_0\n  i: -0b101\n  j: 1:20\n  k: 2001-12-14\n  l: .\n  m: 0o17\n  o: .inf\n  on: key\n';
    expect(injectManifests(cm, ctx).output).toBe(
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: true\n  b: false\n  c: true\n  d: 15\n  e: 31\n  f: 15\n  g: 1000\n  h: 10000000000\n  i: -5\n  j: "1:20"\n  k: "2001-12-14"\n  l: "."\n  m: 15\n  o: .inf\n  "true": key\n',
    );
  });

  test('hostNetwork: yes is true to kubectl: the pod is skipped as the webhook skips it, not injected', () => {
    const { output, reports } = injectManifests('apiVersion: v1\nkind: Pod\nmetadata: {name: h}\nspec:\n  hostNetwork: yes\n  containers: [{name: app, image: x}]\n', ctx);
    expect(reports[0]).toMatchObject({ result: 'skipped: host-network' });
    expect(output).toContain('hostNetwork: true\n');
  });

  test('an unquoted label value that kubectl reads as a boolean is refused, as the API server refuses it', () => {
    expect(() => injectManifests('apiVersion: v1\nkind: Pod\nmetadata: {name: l, labels: {enabled: on}}\nspec:\n  containers: [{name: app, image: x}]\n', ctx)).toThrow(/metadata\.labels is not a map of strings/);
  });
});

describe("the proxy's config annotation round-trips through the proxy's own parser (audit 38g)", () => {
  test('probe header names and values and the access log setting that YAML 1.1 would misread stay strings', () => {
    // Names at even places (letters, digits and "-" only, as Kubernetes takes them), values at every place.
    const headers = ['yes', 'on', 'y', '0o17', '0X1F', '~', '1e3', '1:20', 'true'];
    const pod = [
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: r\n  annotations:\n    tessera.dev/access-log: "off"\nspec:\n  containers:\n    - name: app\n      image: x\n',
      '      ports: [{containerPort: 8080}]\n      readinessProbe:\n        httpGet:\n          path: /on\n          port: 8080\n          httpHeaders:\n',
      headers.map((h, i) => `            - {name: ${q(i % 2 === 0 ? h : `x-${i}`)}, value: ${q(h)}}\n`).join(''),
    ].join('');
    const [injected] = readManifest(injectManifests(pod, ctx).output) as { metadata: { annotations: Record<string, string> } }[];
    const config = parseProxyConfig(injected!.metadata.annotations['tessera.dev/proxy-config']!, '/etc/tessera/proxy.yaml');
    expect(config.telemetry.accessLog).toBe('off');
    const probe = config.admin.appProbes['app/readiness']!;
    expect(probe.path).toBe('/on');
    expect(probe.headers).toEqual(Object.fromEntries(headers.map((h, i) => [i % 2 === 0 ? h : `x-${i}`, h])));
  });
});
