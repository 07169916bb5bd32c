// `tessera inject` reads YAML as kubectl does (audit 38b, F4, F6): every refusal of its input carries a code (aliases
// past the bound, a recursive alias, a duplicate key, bytes that are not UTF-8), anchors kubectl accepts are
// expanded, merge keys (<<) are resolved, and any *List kind is descended into.
import { parseAllDocuments } from 'yaml';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { MAX_LIST_DEPTH, injectManifests } from '../../../../control-plane/src/injector/manifest-inject.js';
import { MAX_ALIAS_EXPANSION } from '../../../../control-plane/src/injector/manifest-yaml.js';
import { testContext } from '../../../helpers/injector-fixtures.js';

const POD = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: app, image: x}]\n';
const ctx = await testContext();

/** Everything goes through injectManifests, as `tessera inject` does: objects that are not pods come out as read. */
function output(input: string | Uint8Array): string {
  return injectManifests(input, ctx).output;
}
const readManifest = (input: string | Uint8Array): unknown[] => parseAllDocuments(output(input)).map((d) => d.toJS() as unknown);

function refusal(input: string | Uint8Array): { code: string; message: string } {
  try {
    output(input);
  } catch (e) {
    if (isTesseraError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

const sidecars = (output: string) => parseAllDocuments(output).map((d) => JSON.stringify(d.toJS()).split('"tessera-proxy"').length - 1);

describe('aliases (audit 38b, F4)', () => {
  test('the audit\'s 101 uses of one anchor are read (kubectl reads them); each use is its own copy', () => {
    // The label is w, not the audit's y: kubectl reads a plain y as true, and refuses a label that is not text.
    const alias101 = `apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {x: &v w}}\nspec:\n  containers: [{name: app, image: x}]\n  z: [${Array(101).fill('*v').join(',')}]\n`;
    const [pod] = readManifest(alias101) as { spec: { z: string[] } }[];
    expect(pod!.spec.z).toEqual(Array(101).fill('w'));
    // Written out in full: no anchor or alias of the input (nor of shared objects) reaches the output.
    expect(output('a: &m {k: [1]}\nb: *m\nc: [*m]\n')).toBe('a:\n  k:\n    - 1\nb:\n  k:\n    - 1\nc:\n  - k:\n      - 1\n');
  });

  test('a recursive alias, a billion laughs, an alias without an anchor: refused with TESSERA_ERR_INJECT_NOT_A_POD', () => {
    expect(refusal(`${POD}  x: &a [1, *a]\n`)).toEqual({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: 'document 1: alias *a is inside its own anchor (a recursive alias): the document has no finite value' });
    expect(refusal('a: &a {b: {c: *a}}\n').message).toContain('recursive alias');
    // The anchor redefined by an enclosing node is that node (the last one before the alias): recursive too.
    expect(refusal('x: &a 1\ny: &a [*a]\n').message).toContain('recursive alias');
    const levels = 'abcdefghij'.split('');
    const lol = levels.map((l, i) => `${l}: &${l} [${Array(10).fill(i === 0 ? 'x' : `*${levels[i - 1]}`).join(',')}]`).join('\n');
    expect(refusal(`${POD}---\n${lol}\n`)).toEqual({
      code: 'TESSERA_ERR_INJECT_NOT_A_POD',
      message: `document 2: its aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (a bound against "billion laughs" documents); write the repeated parts out`,
    });
    // Wide rather than deep: many uses of one large anchor.
    expect(refusal(`big: &b [${Array(1000).fill('1').join(',')}]\nuses: [${Array(101).fill('*b').join(',')}]\n`).message).toContain('expand to more than');
    expect(refusal('a: *nope\n')).toEqual({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: 'document 1: alias *nope has no anchor &nope before it' });
    // Anchors are per document.
    expect(refusal('a: &x 1\n---\nb: *x\n').message).toBe('document 2: alias *x has no anchor &x before it');
  });

  test('up to the bound is read: what aliases add is counted, not the anchors as written', () => {
    const n = MAX_ALIAS_EXPANSION / 100;
    const [doc] = readManifest(`big: &b [${Array(99).fill('1').join(',')}]\nuses: [${Array(n).fill('*b').join(',')}]\n`) as { uses: number[][] }[];
    expect(doc!.uses).toHaveLength(n);
    // Thousands of anchors each used once: expanded in one pass (the library looked each alias up in a scan).
    const many = Array.from({ length: 3000 }, (_, i) => `a${i}: &a${i} v${i}`).join('\n');
    const uses = Array.from({ length: 3000 }, (_, i) => `b${i}: *a${i}`).join('\n');
    const [big] = readManifest(`${many}\n${uses}\n`) as Record<string, string>[];
    expect(big!['b2999']).toBe('v2999');
  });

  test('a duplicate key is refused with its line, also when an alias or another spelling makes it one', () => {
    expect(refusal(`${POD}  containers: []\n`)).toEqual({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: 'document 1 is not valid YAML: map key "containers" is given twice at line 6, column 3' });
    expect(refusal('x: &k a\n*k : 1\na: 2\n').message).toContain('map key "a" is given twice at line 3');
    expect(refusal('1: a\n"1": b\n').message).toContain('map key "1" is given twice at line 2');
    expect(refusal('? [1]\n: a\n').message).toBe('document 1 is not valid YAML for Kubernetes: a map key at line 1, column 3 is a collection, not text');
  });
});

describe('merge keys (audit 38b, F6)', () => {
  test('<< is resolved as kubectl resolves it: explicit keys win, a list merges in order', () => {
    const [pod] = readManifest('spec:\n  containers:\n    - <<: {name: app, image: x}\n      ports: [{containerPort: 8080}]\n') as { spec: { containers: unknown[] } }[];
    expect(pod!.spec.containers[0]).toEqual({ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] });
    // Not y as a key: kubectl reads it as true (the key "true").
    const [doc] = readManifest('a: &a {x: 1, w: 1}\nb: &b {w: 2, z: 2}\nc: {<<: [*a, *b], x: 0}\nd: {x: 0, <<: *a}\n') as Record<string, unknown>[];
    expect(doc!.c).toEqual({ x: 0, w: 1, z: 2 });
    expect(doc!.d).toEqual({ x: 0, w: 1 });
    expect(refusal('a: {<<: [1, 2]}\n')).toEqual({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: 'document 1 cannot be read: Merge sources must be maps or map aliases' });
  });

  test('a quoted "<<" is a plain key, and stays one in the output (quoted, so no reader merges it)', async () => {
    const yaml = output('a: {"<<": {x: 1}}\n');
    expect(yaml).toBe('a:\n  "<<":\n    x: 1\n');
    expect(output(yaml)).toBe(yaml);
    expect(parseAllDocuments(yaml, { merge: true })[0]!.toJS()).toEqual({ a: { '<<': { x: 1 } } });
  });

  test('the audit\'s manifest is injected, app container and all', async () => {
    const r = injectManifests('apiVersion: v1\nkind: Pod\nmetadata: {name: mk}\nspec:\n  containers:\n    - <<: {name: app, image: x}\n      ports: [{containerPort: 8080}]\n', ctx);
    expect(r.reports).toEqual([{ document: 1, kind: 'Pod', name: 'mk', result: 'injected' }]);
    const [pod] = parseAllDocuments(r.output).map((d) => d.toJS());
    expect(pod.spec.containers[0]).toMatchObject({ name: 'app', image: 'x' });
    expect(pod.spec.initContainers[0].name).toBe('tessera-proxy');
  });
});

describe('lists kubectl flattens (audit 38b, F6)', () => {
  const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { selector: {}, template: { metadata: {}, spec: { containers: [{ name: 'app', image: 'x' }] } } } };
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'x' }] } };

  test('PodList, DeploymentList and any *List are descended into like List', async () => {
    for (const [kind, items] of [['PodList', [pod]], ['DeploymentList', [deployment]], ['List', [pod, deployment]], ['PodList', [deployment, { apiVersion: 'v1', kind: 'List', items: [pod] }]]] as const) {
      const r = injectManifests(JSON.stringify({ apiVersion: 'v1', kind, items }), ctx);
      expect(r.reports.every((x) => x.result === 'injected'), `${kind}: ${JSON.stringify(r.reports)}`).toBe(true);
      expect(sidecars(r.output)).toEqual([r.reports.length]);
    }
  });

  test('an item of a typed list without kind and apiVersion (as the API server lists them) is of the list\'s kind', async () => {
    const { kind: _k, apiVersion: _a, ...bare } = pod;
    const r = injectManifests(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', items: [bare, { kind: 'Service', metadata: { name: 's' } }] }), ctx);
    expect(r.reports.map((x) => `${x.kind} ${x.name}: ${x.result}`)).toEqual(['Pod p: injected', 'Service s: passed-through']);
    const [list] = parseAllDocuments(r.output).map((d) => d.toJS());
    expect(list.items[0].kind).toBeUndefined();
    expect(list.items[0].spec.initContainers[0].name).toBe('tessera-proxy');
  });

  test(`lists nested more than ${MAX_LIST_DEPTH} deep are refused with a code`, async () => {
    let nested: unknown = pod;
    for (let i = 0; i <= MAX_LIST_DEPTH; i++) nested = { apiVersion: 'v1', kind: 'List', items: [nested] };
    expect(() => injectManifests(JSON.stringify(nested), ctx)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: `document 1: lists nested more than ${MAX_LIST_DEPTH} deep` }));
    // One level less is injected.
    expect(injectManifests(JSON.stringify((nested as { items: unknown[] }).items[0]), ctx).reports).toEqual([{ document: 1, kind: 'Pod', name: 'p', result: 'injected' }]);
  });

  test('kinds named like Object members pass through (kind: constructor failed uncoded)', async () => {
    const { reports } = injectManifests('kind: constructor\nmetadata: {name: a}\n---\nkind: toString\nmetadata: {name: b}\n---\nkind: __proto__\nmetadata: {name: c}\n', ctx);
    expect(reports.map((r) => r.result)).toEqual(['passed-through', 'passed-through', 'passed-through']);
  });
});

describe('text encoding (audit 38b, F6)', () => {
  test('bytes that are not UTF-8 are refused naming the line, never read as U+FFFD', () => {
    const latin1 = Buffer.concat([Buffer.from('apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {x: "caf'), Buffer.from([0xe9]), Buffer.from('"}}\n')]);
    expect(refusal(latin1)).toEqual({ code: 'TESSERA_ERR_INJECT_NOT_A_POD', message: 'the manifest is not UTF-8 text: line 3 holds bytes that are not UTF-8 (Latin-1? convert it with iconv -t UTF-8)' });
    for (const bad of [[0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]]) {
      expect(refusal(Buffer.concat([Buffer.from(POD), Buffer.from('x: '), Buffer.from(bad)])).message, JSON.stringify(bad)).toContain('line 6 holds bytes that are not UTF-8');
    }
    expect(refusal(Buffer.from(`\ufeff${POD}`, 'utf16le')).message).toContain('UTF-16 byte-order mark');
  });

  test('UTF-8, with or without a byte-order mark, is read as it is', () => {
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cafe}\ndata: {menu: "café ☕ 𝄞"}\n';
    for (const bytes of [Buffer.from(configMap), Buffer.from(`\ufeff${configMap}`)]) {
      expect(readManifest(bytes)).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cafe' }, data: { menu: 'café ☕ 𝄞' } }]);
    }
  });
});
