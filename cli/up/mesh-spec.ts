// What `tessera up` runs: the embedded default mesh (web → api demo) or a user's mesh.yaml, as one MeshSpec.
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ObjectSchema } from '../../common/config/schema.js';
import { lineOf, parseYamlConfig } from '../../common/config/validate-yaml.js';
import { TesseraError } from '../../common/errors.js';
import { checkTrustDomain } from '../../control-plane/src/config/federation-config.js';
import { readConfigText } from '../../shared-io/read-named-file.js';

export interface MeshWorkload {
  readonly name: string;
  /** The app's command; absent = the built-in demo app. */
  readonly command?: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Port the app listens on (loopback). */
  readonly appPort: number;
  readonly protocol: 'http' | 'tcp';
  readonly inboundPort: number;
  readonly adminPort: number;
  /** Local outbound listeners: app → this port → the named workload's service (balanced over its replicas). */
  readonly outbound: readonly { readonly to: string; readonly port: number }[];
  /** Copies of the app, each with its own sidecar; all register as the service named after the workload. */
  readonly replicas: number;
}

export interface MeshSpec {
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  readonly controlPlane: { readonly grpcPort: number; readonly adminPort: number };
  readonly workloads: readonly MeshWorkload[];
  /** AuthorizationPolicy YAML documents to install, by file name. */
  readonly policies: Readonly<Record<string, string>>;
}

export function workloadId(spec: MeshSpec, name: string): string {
  return `spiffe://${spec.trustDomain}/ns/default/sa/${name}`;
}

/** A replica's own name (logs, configs, the demo app's `instance`): the workload's name when it has one replica. */
export function replicaName(w: Pick<MeshWorkload, 'name' | 'replicas'>, index: number): string {
  return w.replicas > 1 ? `${w.name}-${index + 1}` : w.name;
}

/**
 * The port replica `index` (0-based) asks for, from the one mesh.yaml gives the workload: the app's own port counts
 * up by one per replica (your command gets it as PORT), a sidecar's by ten (its app, inbound, admin and outbound
 * ports of one replica are neighbours). 0 (any free port) stays 0.
 */
export function replicaPort(base: number, index: number, kind: 'app' | 'sidecar'): number {
  return base === 0 ? 0 : base + index * (kind === 'app' ? 1 : 10);
}

export function defaultMesh(): MeshSpec {
  const spec: MeshSpec = {
    trustDomain: 'tessera.local',
    svidTtlMs: 2 * 60_000,
    controlPlane: { grpcPort: 18443, adminPort: 18444 },
    workloads: [
      { name: 'web', appPort: 18080, protocol: 'http', inboundPort: 15006, adminPort: 15000, outbound: [{ to: 'api', port: 15001 }], replicas: 1 },
      // Two replicas of api: web's sidecar balances every request over both.
      { name: 'api', appPort: 18081, protocol: 'http', inboundPort: 15106, adminPort: 15100, outbound: [{ to: 'web', port: 15101 }], replicas: 2 },
    ],
    policies: {},
  };
  return { ...spec, policies: { 'api-allow-web.yaml': allowPolicy(spec, 'api', ['web']) } };
}

export function allowPolicy(spec: MeshSpec, to: string, from: readonly string[]): string {
  return [
    'apiVersion: tessera.dev/v1',
    'kind: AuthorizationPolicy',
    `metadata: { name: ${to}-allow-${from.join('-')} }`,
    'spec:',
    `  selector: ${workloadId(spec, to)}`,
    '  action: ALLOW',
    '  mode: enforce',
    '  rules:',
    `    - from: [${from.map((f) => workloadId(spec, f)).join(', ')}]`,
    '',
  ].join('\n');
}

export const MESH_SCHEMA: ObjectSchema = {
  type: 'object',
  properties: {
    // The control plane's rules: the trust domain of the mesh is the one its control plane issues in.
    trustDomain: { type: 'string', format: 'trust-domain', check: checkTrustDomain, default: 'tessera.local' },
    svidTtl: { type: 'duration', default: '10m', min: 20_000 },
    controlPlane: {
      type: 'object',
      properties: { grpcPort: { type: 'number', integer: true, min: 0, max: 65535 }, adminPort: { type: 'number', integer: true, min: 0, max: 65535 } },
    },
    workloads: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          // The name is a listener name and a service name in the sidecar's config.
          name: { type: 'string', required: true, minLength: 1, check: (v) => (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v) ? null : 'must be lower-case letters, digits and "-" (at most 63), not starting or ending with "-"') },
          replicas: { type: 'number', integer: true, min: 1, max: 16, default: 1 },
          command: { type: 'array', items: { type: 'string' }, minItems: 1 },
          cwd: { type: 'string' },
          env: { type: 'map', values: { type: 'string' } },
          appPort: { type: 'number', integer: true, min: 1, max: 65535, required: true },
          protocol: { type: 'string', enum: ['http', 'tcp'], default: 'http' },
          inboundPort: { type: 'number', integer: true, min: 0, max: 65535 },
          adminPort: { type: 'number', integer: true, min: 0, max: 65535 },
          outbound: {
            type: 'array',
            items: { type: 'object', properties: { to: { type: 'string', required: true }, port: { type: 'number', integer: true, min: 0, max: 65535, required: true } } },
          },
        },
      },
      required: true,
    },
    policiesDir: { type: 'string' },
  },
};

interface MeshFile {
  trustDomain: string;
  svidTtl: number;
  controlPlane?: { grpcPort?: number; adminPort?: number };
  workloads: { name: string; command?: string[]; cwd?: string; env?: Record<string, string>; appPort: number; protocol: 'http' | 'tcp'; inboundPort?: number; adminPort?: number; outbound?: { to: string; port: number }[]; replicas: number }[];
  policiesDir?: string;
}

/** Loads a user's mesh.yaml; ports left out are chosen free at start. */
export async function loadMeshFile(path: string, readPolicies: (dir: string) => Promise<Record<string, string>>): Promise<MeshSpec> {
  const text = readConfigText({ path, what: 'config' });
  const parsed = parseYamlConfig<MeshFile>(text, path, MESH_SCHEMA);
  const { value } = parsed;
  const base = dirname(resolve(path));
  // Each fault named as the parser names its own: file, line and key.
  const invalid = (at: (string | number)[], key: string, message: string) => {
    const line = lineOf(parsed, at);
    return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${path}:${line}: ${key}: ${message}`, { file: path, line, key });
  };
  const names = new Set<string>();
  for (const [i, w] of value.workloads.entries()) {
    if (names.has(w.name)) throw invalid(['workloads', i, 'name'], `workloads[${i}].name`, `"${w.name}" is the name of an earlier workload (use replicas: N for copies of one)`);
    names.add(w.name);
  }
  for (const [i, w] of value.workloads.entries()) {
    for (const [j, o] of (w.outbound ?? []).entries()) {
      if (!names.has(o.to)) throw invalid(['workloads', i, 'outbound', j, 'to'], `workloads[${i}].outbound[${j}].to`, `workload "${w.name}" has an outbound to unknown workload "${o.to}"`);
    }
  }
  // Checked here, not left to spawn: a missing cwd fails there as "spawn <command> ENOENT", which names the command.
  for (const [i, w] of value.workloads.entries()) {
    if (!w.cwd) continue;
    const dir = resolve(base, w.cwd);
    const isDir = await stat(dir).then(
      (st) => st.isDirectory(),
      () => false,
    );
    if (!isDir) throw invalid(['workloads', i, 'cwd'], `workloads[${i}].cwd`, `${dir} is not a directory (relative to the mesh file's directory)`);
  }
  return {
    trustDomain: value.trustDomain,
    svidTtlMs: value.svidTtl,
    controlPlane: { grpcPort: value.controlPlane?.grpcPort ?? 0, adminPort: value.controlPlane?.adminPort ?? 0 },
    workloads: value.workloads.map((w) => ({
      name: w.name,
      ...(w.command ? { command: w.command } : {}),
      ...(w.cwd ? { cwd: resolve(base, w.cwd) } : { cwd: base }),
      ...(w.env ? { env: w.env } : {}),
      appPort: w.appPort,
      protocol: w.protocol,
      inboundPort: w.inboundPort ?? 0,
      adminPort: w.adminPort ?? 0,
      outbound: w.outbound ?? [],
      replicas: w.replicas,
    })),
    policies: value.policiesDir ? await readPolicies(resolve(base, value.policiesDir)) : {},
  };
}
