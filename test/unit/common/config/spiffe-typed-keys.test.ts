// Every SPIFFE-typed key of the config files (a trust domain, a SPIFFE ID, an ID pattern) is checked at load: a
// malformed value is TESSERA_ERR_CONFIG_INVALID naming file:line:col and the key, and the message carries the
// specific TESSERA_ERR_SPIFFE_ID_* code. Audit 51a F2: identity.controlPlane.trustDomain passed the schema and failed
// later with a bare SPIFFE code, no file, line or key; edge[].clientTrustDomain and the mesh's trustDomain named no
// code (or were not checked). The keys are found in the schemas, so a new one without a SPIFFE format fails here.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { MESH_SCHEMA, loadMeshFile } from '../../../../cli/up/mesh-spec.js';
import type { Schema } from '../../../../common/config/schema.js';
import { isTesseraError } from '../../../../common/errors.js';
import { controlPlaneSchema, parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { parseProxyConfig, proxySchema } from '../../../../proxy/src/config/proxy-config.js';

type SpiffeFormat = 'spiffe-id' | 'id-pattern' | 'trust-domain';

/** Key paths ("edge[].routes[].spiffeId") of a schema whose values are SPIFFE-typed, and those named like one. */
function spiffeKeys(schema: Schema, prefix = ''): { path: string; format: string | undefined }[] {
  const out: { path: string; format: string | undefined }[] = [];
  const leaf = (s: Schema, path: string) => {
    const format = s.type === 'string' ? s.format : undefined;
    if (format === 'spiffe-id' || format === 'id-pattern' || format === 'trust-domain' || /spiffeid|trustdomain/i.test(path.split('.').at(-1)!)) out.push({ path, format });
  };
  if (schema.type === 'object') {
    for (const [k, sub] of Object.entries(schema.properties)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (sub.type === 'object' || sub.type === 'array' || sub.type === 'map') out.push(...spiffeKeys(sub, path));
      else leaf(sub, path);
    }
  } else if (schema.type === 'array') {
    if (schema.items.type === 'string') leaf(schema.items, `${prefix}[]`);
    else out.push(...spiffeKeys(schema.items, `${prefix}[]`));
  } else if (schema.type === 'map') {
    if (schema.values.type === 'string') leaf(schema.values, `${prefix}.*`);
    else out.push(...spiffeKeys(schema.values, `${prefix}.*`));
  }
  return out;
}

const FILES_IDENTITY = 'identity:\n  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }\n';
const CP_HEAD = 'trustDomain: example.org\ndataDir: ./data\n';

/**
 * One config per key: `V` stands for the value (JSON-quoted), `line`/`column` where it is, `key` as the error names it.
 * `loader` is the file's own.
 */
const CASES: Record<string, { loader: 'proxy' | 'control-plane' | 'mesh'; text: string; line: number; column: number; key: string }> = {
  'proxy identity.controlPlane.trustDomain': {
    loader: 'proxy',
    text: 'identity:\n  controlPlane:\n    address: 127.0.0.1:8443\n    bundleFile: b.pem\n    trustDomain: V\n    joinTokenFile: t\nworkloadApi: { socket: w.sock }\n',
    line: 5,
    column: 18,
    key: 'identity.controlPlane.trustDomain',
  },
  'proxy outbound[].spiffeId': {
    loader: 'proxy',
    text: `${FILES_IDENTITY}outbound:\n  - name: api\n    listen: 127.0.0.1:15001\n    upstream: 127.0.0.1:25006\n    spiffeId: V\n`,
    line: 7,
    column: 15,
    key: 'outbound[0].spiffeId',
  },
  'proxy edge[].clientTrustDomain': {
    loader: 'proxy',
    text: `${FILES_IDENTITY}edge:\n  - name: e\n    listen: 127.0.0.1:8443\n    certFile: c.pem\n    keyFile: k.pem\n    clientCa: ca.pem\n    clientTrustDomain: V\n    routes: [{ upstream: 127.0.0.1:1, unsafePlaintext: true }]\n`,
    line: 9,
    column: 24,
    key: 'edge[0].clientTrustDomain',
  },
  'proxy edge[].routes[].spiffeId': {
    loader: 'proxy',
    text: `${FILES_IDENTITY}edge:\n  - name: e\n    listen: 127.0.0.1:8443\n    certFile: c.pem\n    keyFile: k.pem\n    routes:\n      - upstream: 127.0.0.1:1\n        spiffeId: V\n`,
    line: 10,
    column: 19,
    key: 'edge[0].routes[0].spiffeId',
  },
  'control-plane trustDomain': { loader: 'control-plane', text: 'trustDomain: V\ndataDir: ./data\n', line: 1, column: 14, key: 'trustDomain' },
  'control-plane federation.trustDomains[].trustDomain': {
    loader: 'control-plane',
    text: `${CP_HEAD}federation:\n  trustDomains:\n    - trustDomain: V\n      bundleEndpointUrl: https://b.test/bundle\n      profile: https_web\n`,
    line: 5,
    column: 20,
    key: 'federation.trustDomains[0].trustDomain',
  },
  'control-plane federation.trustDomains[].endpointSpiffeId': {
    loader: 'control-plane',
    text: `${CP_HEAD}federation:\n  trustDomains:\n    - trustDomain: b.test\n      bundleEndpointUrl: https://b.test/bundle\n      profile: https_spiffe\n      bundleFile: b.json\n      endpointSpiffeId: V\n`,
    line: 9,
    column: 25,
    key: 'federation.trustDomains[0].endpointSpiffeId',
  },
  'control-plane discovery.serviceIdentities.*[]': {
    loader: 'control-plane',
    text: `${CP_HEAD}discovery:\n  serviceIdentities:\n    api: [V]\n`,
    line: 5,
    column: 11,
    key: 'discovery.serviceIdentities.api[0]',
  },
  'mesh trustDomain': { loader: 'mesh', text: 'trustDomain: V\nworkloads: [{ name: web, appPort: 18080 }]\n', line: 1, column: 14, key: 'trustDomain' },
};

/** Malformed values of each type, with the code each must be refused with. */
const BAD: Record<SpiffeFormat, [string, string][]> = {
  'trust-domain': [
    ['Example.org', 'BAD_TRUST_DOMAIN_CHAR'],
    ['example.org:8443', 'PORT'],
    ['user@example.org', 'USERINFO'],
    ['example.org/path', 'BAD_TRUST_DOMAIN_CHAR'],
    ['a b', 'BAD_TRUST_DOMAIN_CHAR'],
    ['', 'NO_TRUST_DOMAIN'],
    [`${'a'.repeat(256)}.org`, 'TRUST_DOMAIN_TOO_LONG'],
  ],
  'spiffe-id': [
    ['spiffe://example.org/a?b', 'QUERY'],
    ['spiffe://example.org/a#b', 'FRAGMENT'],
    ['spiffe://example.org//a', 'EMPTY_SEGMENT'],
    ['spiffe://example.org/a/..', 'DOT_SEGMENT'],
    ['spiffe://Example.org/a', 'BAD_TRUST_DOMAIN_CHAR'],
    ['http://example.org/a', 'WRONG_SCHEME'],
    ['', 'EMPTY'],
  ],
  'id-pattern': [
    ['spiffe://example.org/a*', 'PATTERN'],
    ['spiffe://example.org/**/a', 'PATTERN'],
    ['spiffe://Example.org/**', 'BAD_TRUST_DOMAIN_CHAR'],
    ['spiffe://example.org//*', 'EMPTY_SEGMENT'],
  ],
};

const SCHEMAS = { proxy: proxySchema, 'control-plane': controlPlaneSchema, mesh: MESH_SCHEMA } as const;

const dir = mkdtempSync(join(tmpdir(), 'tessera-spiffe-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function load(loader: 'proxy' | 'control-plane' | 'mesh', text: string, file: string): Promise<unknown> {
  if (loader === 'proxy') return parseProxyConfig(text, file);
  if (loader === 'control-plane') return parseControlPlaneConfig(text, file);
  writeFileSync(file, text);
  return loadMeshFile(file, async () => ({}));
}

describe('SPIFFE-typed config keys', () => {
  test('every key named like one has a SPIFFE format, and every SPIFFE-typed key has a case here', () => {
    const found = Object.entries(SCHEMAS).flatMap(([loader, schema]) => spiffeKeys(schema).map((k) => ({ ...k, name: `${loader} ${k.path}` })));
    expect(found.filter((k) => k.format === undefined).map((k) => k.name)).toEqual([]);
    expect(found.map((k) => k.name).sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: refused at load with file:line:col, the key and the specific code`, async () => {
      const [loader, path] = name.split(' ') as ['proxy' | 'control-plane' | 'mesh', string];
      const format = spiffeKeys(SCHEMAS[loader]).find((k) => k.path === path)!.format as SpiffeFormat;
      const file = join(dir, `${loader}.yaml`);
      for (const [value, code] of BAD[format]) {
        const text = c.text.replace('V', JSON.stringify(value));
        const err = await load(loader, text, file).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isTesseraError(err, 'TESSERA_ERR_CONFIG_INVALID'), `${name} = ${JSON.stringify(value)}: ${String(err)}`).toBe(true);
        const message = (err as Error).message.split('\n')[0]!;
        expect(message, JSON.stringify(value)).toContain(`${file}:${c.line}:${c.column}: ${c.key}: `);
        expect(message, JSON.stringify(value)).toContain(`(TESSERA_ERR_SPIFFE_ID_${code}: `);
      }
    });
  }

  test('a valid value of each still loads (spiffe:// before a trust domain is taken too)', async () => {
    expect(parseProxyConfig(CASES['proxy identity.controlPlane.trustDomain']!.text.replace('V', 'spiffe://example.org'), join(dir, 'p.yaml')).identity).toMatchObject({ trustDomain: 'spiffe://example.org' });
    expect(parseControlPlaneConfig(CASES['control-plane discovery.serviceIdentities.*[]']!.text.replace('V', '"spiffe://example.org/ns/*/sa/api"'), join(dir, 'c.yaml')).discovery.serviceIdentities).toEqual({ api: ['spiffe://example.org/ns/*/sa/api'] });
  });
});
