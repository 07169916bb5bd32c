// The routed-mesh topology on loopback (DESIGN.md section 11): a control plane (CA, policies, service registry),
// replicas of one service — each a demo app and a sidecar registering itself, on its own 127.0.0.x — and callers'
// sidecars routing by `service:` or to one fixed `upstream:`. Identities come from the control plane (join tokens).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';
import { freePorts } from '../harness/ports.js';
import { type TesseraOutboundRoute, tesseraMeshProxyConfig } from './tessera-config.js';
import { httpGetText, type TopologyEnv, tesseraCommand } from './topology.js';

export const MESH_TRUST_DOMAIN = 'bench.local';
export const meshWorkloadId = (name: string) => `spiffe://${MESH_TRUST_DOMAIN}/ns/bench/sa/${name}`;

export interface BenchControlPlane {
  readonly process: SupervisedProcess;
  /** host:port of the gRPC listener. */
  readonly grpc: string;
  readonly dataDir: string;
  readonly bundleFile: string;
  /** A fresh single-use join token for `spiffeId`, written to a file (for `joinTokenFile`). */
  tokenFile(spiffeId: string, name: string): Promise<string>;
}

/** `tessera control-plane` with join tokens and a policies directory (each entry: file name → policy YAML). */
/** `serviceIdentities`: who may register which service (the control plane's discovery.serviceIdentities). */
export async function startBenchControlPlane(env: TopologyEnv, policies: Readonly<Record<string, string>>, serviceIdentities: Readonly<Record<string, readonly string[]>> = {}): Promise<BenchControlPlane> {
  const dir = join(env.workDir, 'control-plane');
  const policiesDir = join(dir, 'policies');
  await mkdir(policiesDir, { recursive: true });
  for (const [file, text] of Object.entries(policies)) await writeFile(join(policiesDir, file), text);
  const dataDir = join(dir, 'data');
  const config = [`trustDomain: ${MESH_TRUST_DOMAIN}`, 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'logLevel: warn', 'attestors: { joinToken: { enabled: true } }', 'policies: { dir: ./policies }'];
  const listed = Object.entries(serviceIdentities);
  if (listed.length > 0) config.push(`discovery: { serviceIdentities: { ${listed.map(([service, ids]) => `${service}: [${ids.join(', ')}]`).join(', ')} } }`);
  config.push('');
  await writeFile(join(dir, 'cp.yaml'), config.join('\n'));
  const p = await env.group.start({ name: 'control-plane', ...tesseraCommand(env.tesseraCli, 'control-plane', '--config', join(dir, 'cp.yaml')), cwd: dir, ready: { line: /tessera control-plane: ready/ } });
  const m = /tessera control-plane: grpc (\S+)/.exec(await readFile(p.logFile!, 'utf8'));
  if (!m) throw new Error(`no address line in ${p.logFile}`);
  const tokensDir = join(dir, 'tokens');
  await mkdir(tokensDir, { recursive: true });
  let made = 0;
  return {
    process: p,
    grpc: m[1]!,
    dataDir,
    bundleFile: join(dataDir, 'bundle.pem'),
    async tokenFile(spiffeId, name) {
      const r = await adminRequest<{ token: string }>(dataDir, 'POST', '/v1/tokens', { spiffeId, ttlMs: 3_600_000 });
      const file = join(tokensDir, `${name}-${++made}.token`);
      await writeFile(file, `${r.token}\n`, { mode: 0o600 });
      return file;
    },
  };
}

/** A sidecar of `spiffeId` with a fresh join token; `name` must be new to the group (its log file is appended to). */
async function startMeshProxy(env: TopologyEnv, cp: BenchControlPlane, name: string, spiffeId: string, parts: Omit<Parameters<typeof tesseraMeshProxyConfig>[0], 'controlPlane'>): Promise<SupervisedProcess> {
  const dir = join(env.workDir, 'mesh');
  await mkdir(dir, { recursive: true });
  const conf = join(dir, `${name}.yaml`);
  const joinTokenFile = await cp.tokenFile(spiffeId, name);
  await writeFile(conf, tesseraMeshProxyConfig({ controlPlane: { address: cp.grpc, bundleFile: cp.bundleFile, joinTokenFile }, ...parts }));
  return env.group.start({ name, ...tesseraCommand(env.tesseraCli, 'proxy', '--config', conf), cwd: dir, ready: { line: /tessera proxy: ready/ }, readyTimeoutMs: 20_000 });
}

export interface ReplicaHandle {
  /** 1-based. */
  readonly index: number;
  /** `api-1`: the demo app's instance. */
  readonly name: string;
  /** 127.0.0.(index + 1): every replica on its own loopback address. */
  readonly host: string;
  readonly inbound: string;
  app(): SupervisedProcess;
  proxy(): SupervisedProcess;
  metrics(): Promise<string>;
  /** Replaces the app (same address) with one answering `delayMs` later. */
  restartApp(delayMs: number): Promise<void>;
  /** Starts the sidecar again (after a kill) with a new join token, same addresses. */
  restartProxy(): Promise<void>;
}

/** Replica `index` of `service`: `tessera demo-app` and a sidecar whose inbound listener registers as the service. */
export async function startReplica(env: TopologyEnv, cp: BenchControlPlane, service: string, index: number, delayMs = 0): Promise<ReplicaHandle> {
  const host = `127.0.0.${index + 1}`;
  const name = `${service}-${index}`;
  const [appPort, inboundPort, adminPort] = await freePorts(3);
  let starts = 0;
  const startApp = (delay: number) =>
    env.group.start({
      name: `${name}-app-${++starts}`,
      command: process.execPath,
      args: [env.tesseraCli, 'demo-app', '--name', service, '--instance', name, '--listen', `${host}:${appPort}`, ...(delay > 0 ? ['--delay', `${delay}ms`] : [])],
      ready: { line: /tessera demo-app: ready/ },
    });
  let proxyStarts = 0;
  const startProxy = () =>
    startMeshProxy(env, cp, `${name}-proxy-${++proxyStarts}`, meshWorkloadId(service), {
      adminListen: `${host}:${adminPort}`,
      inbound: { listen: `${host}:${inboundPort}`, forwardTo: `${host}:${appPort}`, service },
    });
  let app = await startApp(delayMs);
  let proxy = await startProxy();
  return {
    index,
    name,
    host,
    inbound: `${host}:${inboundPort}`,
    app: () => app,
    proxy: () => proxy,
    metrics: () => httpGetText(`http://${host}:${adminPort}/metrics`),
    async restartApp(delay) {
      await app.stop();
      app = await startApp(delay);
    },
    async restartProxy() {
      await proxy.stop();
      proxy = await startProxy();
    },
  };
}

export interface CallerHandle {
  readonly process: SupervisedProcess;
  /** Plaintext entry: the caller sidecar's outbound listener on 127.0.0.1. */
  readonly entryPort: number;
  metrics(): Promise<string>;
  /** The admin `/endpoints` view (service → endpoints with address and state), parsed. */
  endpoints(): Promise<unknown>;
}

/** The state (`ready`, `ejected`, `draining`, `not_ready`) a caller's `/endpoints` view gives `address` of `service`, or null when absent. */
export function endpointState(view: unknown, service: string, address: string): string | null {
  const list = view && typeof view === 'object' ? (view as Record<string, unknown>)[service] : undefined;
  if (!Array.isArray(list)) return null;
  const e = list.find((x) => (x as { address?: unknown } | null)?.address === address) as { state?: unknown } | undefined;
  return typeof e?.state === 'string' ? e.state : null;
}

/** A caller's sidecar (ID `spiffeId`) with one outbound listener routed by `route`, and `routing:` settings if given. */
export async function startCaller(env: TopologyEnv, cp: BenchControlPlane, name: string, spiffeId: string, route: TesseraOutboundRoute, routing?: Readonly<Record<string, unknown>>): Promise<CallerHandle> {
  const [entryPort, adminPort] = await freePorts(2);
  const p = await startMeshProxy(env, cp, name, spiffeId, { adminListen: `127.0.0.1:${adminPort}`, outbound: { listen: `127.0.0.1:${entryPort}`, route }, ...(routing ? { routing } : {}) });
  const admin = `http://127.0.0.1:${adminPort}`;
  return { process: p, entryPort: entryPort!, metrics: () => httpGetText(`${admin}/metrics`), endpoints: async () => JSON.parse(await httpGetText(`${admin}/endpoints`)) as unknown };
}
