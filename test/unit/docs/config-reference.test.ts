// docs/configuration.md against the config schemas: every key path of the proxy, control-plane and mesh schemas
// is documented with its type, default and required flag; no documented key is unknown; every complete example
// on the page, and every YAML block of control-plane.md, parses with the real loaders.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { MESH_SCHEMA, type MeshSpec, defaultMesh, loadMeshFile } from '../../../cli/up/mesh-spec.js';
import type { Schema } from '../../../common/config/schema.js';
import { controlPlaneSchema, parseControlPlaneConfig } from '../../../control-plane/src/config/cp-config.js';
import { parseProxyConfig, proxySchema } from '../../../proxy/src/config/proxy-config.js';

const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
/** The pages whose YAML blocks are configs: each block is marked with the loader it must pass, and passes it. */
const EXAMPLE_PAGES = ['configuration.md', 'control-plane.md'].map((f) => ({ file: f, text: readFileSync(new URL(`../../../docs/${f}`, import.meta.url), 'utf8') }));

/** Every dotted key path of a schema ("limits.headersTimeout", "edge[].routes[].spiffeId") with its schema. */
function keyPaths(schema: Schema, prefix = ''): { path: string; schema: Schema }[] {
  const out: { path: string; schema: Schema }[] = [];
  if (schema.type === 'object') {
    for (const [key, child] of Object.entries(schema.properties)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.push({ path, schema: child }, ...keyPaths(child, path));
    }
  } else if (schema.type === 'array') {
    out.push(...keyPaths(schema.items, `${prefix}[]`));
  } else if (schema.type === 'map') {
    out.push(...keyPaths(schema.values, `${prefix}.*`));
  }
  return out;
}

const FORMAT_WORDS: Readonly<Record<'address' | 'spiffe-id' | 'id-pattern' | 'trust-domain' | 'url' | 'path', string>> = {
  address: 'address',
  'spiffe-id': 'SPIFFE ID',
  'id-pattern': 'SPIFFE ID pattern',
  'trust-domain': 'trust domain',
  url: 'URL',
  path: 'path',
};

/** The word the type column of the doc starts with for a schema. */
function typeWord(s: Schema): string {
  switch (s.type) {
    case 'string':
      if (s.enum) return 'enum';
      return s.format ? FORMAT_WORDS[s.format] : 'string';
    case 'number':
      return s.integer ? 'integer' : 'number';
    case 'array':
      return s.items.type === 'object' ? 'list' : `list of ${typeWord(s.items)}`;
    default:
      return s.type;
  }
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly def: string;
  readonly meaning: string;
}

/** The text of the `## <title>` section. */
function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}`);
  expect(start, `docs/configuration.md has a "## ${title}" section`).toBeGreaterThan(-1);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

function rows(text: string): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const key = /^`([^`]+)`$/.exec(cells[0]!)?.[1];
    if (!key) continue;
    expect(out.has(key), `${key} is documented once`).toBe(false);
    out.set(key, { key, type: cells[1] ?? '', def: cells[2] ?? '', meaning: cells[3] ?? '' });
  }
  return out;
}

function examples(kind: string): string[] {
  const re = new RegExp(`<!-- example: ${kind} -->\\n\`\`\`yaml\\n([\\s\\S]*?)\`\`\``, 'g');
  return EXAMPLE_PAGES.flatMap((p) => [...p.text.matchAll(re)].map((m) => m[1]!));
}

const SCHEMAS: readonly { title: string; schema: Schema }[] = [
  { title: 'Proxy config', schema: proxySchema },
  { title: 'Control-plane config', schema: controlPlaneSchema },
  { title: 'mesh.yaml', schema: MESH_SCHEMA },
];

describe('docs/configuration.md', () => {
  for (const { title, schema } of SCHEMAS) {
    describe(title, () => {
      const paths = keyPaths(schema);
      const documented = rows(section(title));

      test('documents every key path of the schema', () => {
        const missing = paths.map((p) => p.path).filter((p) => !documented.has(p));
        expect(missing).toEqual([]);
        expect(paths.length).toBeGreaterThan(10);
      });

      test('documents no key the schema does not have', () => {
        const known = new Set(paths.map((p) => p.path));
        expect([...documented.keys()].filter((k) => !known.has(k))).toEqual([]);
      });

      test('type, default and required agree with the schema', () => {
        for (const { path, schema: s } of paths) {
          const row = documented.get(path);
          if (!row) continue; // reported above
          expect(row.type.startsWith(typeWord(s)), `${path}: type "${row.type}" should start with "${typeWord(s)}"`).toBe(true);
          if (s.type === 'string' && s.enum) for (const v of s.enum) expect(row.type, `${path} lists ${v}`).toContain(`\`${v}\``);
          const def = 'default' in s ? s.default : undefined;
          if (s.required) expect(row.def, `${path} is required`).toBe('required');
          else if (def !== undefined) expect(row.def, `${path} default`).toBe(`\`${String(def)}\``);
          else expect(row.def, `${path} has no default in the schema`).toBe('—');
          expect(row.meaning.length, `${path} says what it means`).toBeGreaterThan(3);
        }
      });
    });
  }

  test('every YAML block of configuration.md and control-plane.md is a marked example (none escapes the loaders below)', () => {
    for (const p of EXAMPLE_PAGES) {
      const blocks = [...p.text.matchAll(/^```ya?ml\n/gm)].length;
      const marked = [...p.text.matchAll(/^<!-- example: (proxy|control-plane|mesh) -->\n```yaml\n/gm)].length;
      expect(marked, `${p.file}: ${blocks - marked} YAML block(s) without <!-- example: proxy|control-plane|mesh -->`).toBe(blocks);
    }
  });

  describe('complete examples parse with the real loaders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-doc-config-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('proxy examples', () => {
      const list = examples('proxy');
      expect(list.length).toBeGreaterThanOrEqual(2);
      for (const text of list) {
        const c = parseProxyConfig(text, join(dir, 'proxy.yaml'));
        expect(c.inbound.length + c.outbound.length + c.edge.length).toBeGreaterThan(0);
      }
    });

    test('control-plane examples', () => {
      const list = examples('control-plane');
      expect(list.length).toBeGreaterThanOrEqual(4);
      for (const text of list) expect(parseControlPlaneConfig(text, join(dir, 'control-plane.yaml')).trustDomain.name).toBe('example.org');
    });

    test('mesh examples', async () => {
      const list = examples('mesh');
      expect(list.length).toBeGreaterThanOrEqual(1);
      for (const [i, text] of list.entries()) {
        const file = join(dir, `mesh-${i}.yaml`);
        writeFileSync(file, text);
        // The loader refuses a cwd that does not exist: make the ones the example names, as its reader would have.
        for (const m of text.matchAll(/^\s*cwd: (\S+)/gm)) mkdirSync(join(dir, m[1]!), { recursive: true });
        const spec = await loadMeshFile(file, async () => ({}));
        expect(spec.workloads.length).toBeGreaterThan(0);
      }
    });

    test('"The embedded default" is the mesh `tessera up` runs without --config', async () => {
      const file = join(dir, 'embedded.yaml');
      writeFileSync(file, examples('mesh').at(-1)!);
      const documented = await loadMeshFile(file, async () => ({}));
      const embedded = defaultMesh();
      const shape = (m: MeshSpec) => ({
        trustDomain: m.trustDomain,
        svidTtlMs: m.svidTtlMs,
        controlPlane: m.controlPlane,
        workloads: m.workloads.map((w) => ({ name: w.name, appPort: w.appPort, protocol: w.protocol, inboundPort: w.inboundPort, adminPort: w.adminPort, outbound: w.outbound, replicas: w.replicas })),
      });
      expect(shape(documented)).toEqual(shape(embedded));
      expect(Object.keys(embedded.policies)).toEqual(['api-allow-web.yaml']);
      expect(section('mesh.yaml')).toContain('`api-allow-web`');
    });
  });
});
