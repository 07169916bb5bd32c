// Starts a MeshSpec on loopback: control plane, one join token per workload, the apps and their sidecars, then
// reads each sidecar's /certs. Everything is a real child process under one ProcessSupervisor.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../common/clock.js';
import { TesseraError } from '../../common/errors.js';
import { checkAnswer, record, str } from '../admin-answer.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { ProcessSupervisor, type ProcessSpec, type SupervisedProcess } from '../../shared-io/process-supervisor.js';
import type { Timers } from '../../shared-io/timers.js';
import { type MeshSpec, type MeshWorkload, replicaName, replicaPort, workloadId } from './mesh-spec.js';
import { PortPicker } from './ports.js';
import { writeStatePolicies } from './state-policies.js';

/** One copy of a workload: its app and its sidecar. */
export interface LaunchedReplica {
  /** `api-2`, or the workload's name when it has one replica. */
  readonly replica: string;
  readonly appUrl: string;
  readonly inbound: string;
  readonly adminUrl: string;
  readonly outbound: readonly { readonly to: string; readonly url: string }[];
  readonly svidNotAfter: string | null;
  readonly svidSerial: string | null;
}

/** A workload: the service its replicas register as, and the first replica's addresses at the top (as before replicas). */
export interface LaunchedWorkload extends Omit<LaunchedReplica, 'replica'> {
  readonly name: string;
  readonly spiffeId: string;
  readonly service: string;
  readonly replicas: readonly LaunchedReplica[];
}

export interface LaunchedMesh {
  readonly stateDir: string;
  readonly dataDir: string;
  readonly policiesDir: string;
  readonly grpc: string;
  readonly adminUrl: string;
  readonly workloads: readonly LaunchedWorkload[];
  readonly portMoves: readonly { wanted: number; port: number }[];
  readonly supervisor: ProcessSupervisor;
}

/** How long `tessera up` waits for discovery to show every replica before it reports ready anyway. */
const DISCOVERY_WAIT_MS = 15_000;

export interface LaunchOptions {
  readonly stateDir: string;
  /** argv prefix that runs this very `tessera` (node + script). */
  readonly tessera: readonly string[];
  readonly log: (line: string) => void;
  /** The discovery wait's pauses (they hold the process, as a start in progress must) and its deadline. */
  readonly timers: Pick<Timers, 'setTimeout'>;
  readonly clock: Clock;
}

interface ReplicaPorts {
  readonly name: string;
  readonly app: number;
  readonly inbound: number;
  readonly admin: number;
  readonly outbound: Map<string, number>;
}

interface Ports {
  grpc: number;
  admin: number;
  /** Workload name → its replicas' ports, in order. */
  w: Map<string, ReplicaPorts[]>;
}

async function pickPorts(spec: MeshSpec): Promise<{ ports: Ports; picker: PortPicker }> {
  const picker = new PortPicker();
  const ports: Ports = { grpc: await picker.pick(spec.controlPlane.grpcPort), admin: await picker.pick(spec.controlPlane.adminPort), w: new Map() };
  for (const w of spec.workloads) {
    const replicas: ReplicaPorts[] = [];
    for (let i = 0; i < w.replicas; i++) {
      const outbound = new Map<string, number>();
      for (const o of w.outbound) outbound.set(o.to, await picker.pick(replicaPort(o.port, i, 'sidecar')));
      // The app's own port is the user's choice: we do not move it, only check it later by the app starting.
      // Only the built-in demo apps can move; a user's own command listens where its mesh.yaml says.
      const appPort = replicaPort(w.appPort, i, 'app');
      const app = w.command ? appPort : await picker.pick(appPort);
      replicas.push({ name: replicaName(w, i), app, inbound: await picker.pick(replicaPort(w.inboundPort, i, 'sidecar')), admin: await picker.pick(replicaPort(w.adminPort, i, 'sidecar')), outbound });
    }
    ports.w.set(w.name, replicas);
  }
  return { ports, picker };
}

function controlPlaneConfig(spec: MeshSpec, dataDir: string, policiesDir: string, ports: Ports): string {
  return [
    `trustDomain: ${spec.trustDomain}`,
    `dataDir: ${JSON.stringify(dataDir)}`,
    `listen: 127.0.0.1:${ports.grpc}`,
    `adminListen: 127.0.0.1:${ports.admin}`,
    `svid: { ttl: ${Math.round(spec.svidTtlMs / 1000)}s, maxTtl: 24h, backdate: 10s }`,
    'attestors:',
    '  joinToken: { enabled: true }',
    `policies: { dir: ${JSON.stringify(policiesDir)} }`,
    '',
  ].join('\n');
}

/**
 * A replica's sidecar: its inbound listener registers as the workload's service, and every outbound listener
 * balances over the called workload's replicas as discovered from the control plane (DESIGN.md section 11).
 */
function proxyConfig(spec: MeshSpec, w: MeshWorkload, p: ReplicaPorts, grpcPort: number, bundleFile: string, tokenFile: string, stateDir: string): string {
  const lines = [
    'identity:',
    '  controlPlane:',
    `    address: 127.0.0.1:${grpcPort}`,
    `    bundleFile: ${JSON.stringify(bundleFile)}`,
    `    joinTokenFile: ${JSON.stringify(tokenFile)}`,
    'inbound:',
    `  - { name: ${w.name}, listen: 127.0.0.1:${p.inbound}, forwardTo: 127.0.0.1:${p.app}, protocol: ${w.protocol}, service: ${w.name} }`,
  ];
  if (w.outbound.length > 0) {
    lines.push('outbound:');
    for (const o of w.outbound) {
      const target = spec.workloads.find((x) => x.name === o.to)!;
      lines.push(`  - { name: ${o.to}, listen: 127.0.0.1:${p.outbound.get(o.to)}, service: ${o.to}, protocol: ${target.protocol} }`);
    }
  }
  lines.push(`admin: { listen: 127.0.0.1:${p.admin} }`, `workloadApi: { socket: ${JSON.stringify(join(stateDir, `${p.name}.workload.sock`))} }`, '');
  return lines.join('\n');
}

/**
 * A join token for one replica's sidecar (10 min), asked of the control plane's admin.sock in this process: the
 * request `tessera token create` makes, without a node start per replica.
 */
async function createToken(dataDir: string, spiffeId: string): Promise<string> {
  try {
    const answer = await adminRequest(dataDir, 'POST', '/v1/tokens', { spiffeId, ttlMs: 10 * 60_000 });
    return checkAnswer<{ token: string }>(answer, record({ token: str }), 'POST /v1/tokens').token;
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_UP_START_FAILED', `token create --spiffe-id ${spiffeId} failed: ${(e as Error).message}`);
  }
}

async function fetchCerts(adminUrl: string): Promise<{ notAfter: string | null; serial: string | null }> {
  try {
    const res = await fetch(`${adminUrl}/certs`);
    const body = (await res.json()) as { notAfter?: string; serial?: string };
    return { notAfter: body.notAfter ?? null, serial: body.serial ?? null };
  } catch {
    return { notAfter: null, serial: null };
  }
}

/**
 * How many ready endpoints of `service` a sidecar's admin `/endpoints` lists (DESIGN.md section 11: service →
 * endpoints, each with a state), or null when the view has no such service (yet).
 */
export function discoveredCount(view: unknown, service: string): number | null {
  const root = view && typeof view === 'object' ? (view as Record<string, unknown>) : {};
  const services = root['services'] && typeof root['services'] === 'object' ? (root['services'] as Record<string, unknown>) : root;
  const entry = services[service];
  const list = Array.isArray(entry) ? entry : entry && typeof entry === 'object' ? (entry as Record<string, unknown>)['endpoints'] : undefined;
  if (!Array.isArray(list)) return null;
  return list.filter((e) => ((e as { state?: unknown } | null)?.state ?? 'ready') === 'ready').length;
}

/**
 * Waits (bounded) until each caller's sidecar lists every replica of each service it calls, so the first request
 * after `tessera up: ready` is balanced over all of them. A sidecar without the view is not waited for.
 */
async function awaitDiscovery(spec: MeshSpec, workloads: readonly LaunchedWorkload[], { timers, clock }: Pick<LaunchOptions, 'timers' | 'clock'>): Promise<void> {
  const deadline = clock.nowMs() + DISCOVERY_WAIT_MS;
  const want = new Map(spec.workloads.map((w) => [w.name, w.replicas]));
  for (const w of workloads) {
    for (const r of w.replicas) {
      for (const o of r.outbound) {
        while (clock.nowMs() < deadline) {
          const n = await fetch(`${r.adminUrl}/endpoints`).then((res) => (res.ok ? res.json().then((v) => discoveredCount(v, o.to)) : -1), () => -1);
          if (n === -1 || (n ?? 0) >= want.get(o.to)!) break;
          await new Promise<void>((resolve) => timers.setTimeout(resolve, 100, 'keep-alive'));
        }
      }
    }
  }
}

export async function launchMesh(spec: MeshSpec, opts: LaunchOptions): Promise<LaunchedMesh> {
  const { stateDir, tessera, log } = opts;
  const dataDir = join(stateDir, 'control-plane');
  const policiesDir = join(stateDir, 'policies');
  const logDir = join(stateDir, 'logs');
  const configDir = join(stateDir, 'config');
  for (const d of [dataDir, policiesDir, logDir, configDir]) await mkdir(d, { recursive: true, mode: 0o700 });
  await writeStatePolicies(policiesDir, spec.policies);

  const { ports, picker } = await pickPorts(spec);
  const supervisor = new ProcessSupervisor({ logDir, failureCode: 'TESSERA_ERR_UP_START_FAILED' });
  // Each part's whole output is in its log file; only a little is kept in memory, for the failure message.
  const start = (spec: ProcessSpec) => supervisor.start({ outputLimitChars: 64 << 10, ...spec });
  const started: SupervisedProcess[] = [];
  try {
    const cpConfig = join(configDir, 'control-plane.yaml');
    await writeFile(cpConfig, controlPlaneConfig(spec, dataDir, policiesDir, ports));
    log(`starting control plane (grpc 127.0.0.1:${ports.grpc}, admin 127.0.0.1:${ports.admin})`);
    started.push(await start({ name: 'control-plane', command: tessera[0]!, args: [...tessera.slice(1), 'control-plane', '--config', cpConfig], ready: { line: /tessera control-plane: ready/ } }));
    const bundleFile = join(dataDir, 'bundle.pem');
    await readFile(bundleFile); // the control plane publishes it before it reports ready

    for (const w of spec.workloads) {
      for (const p of ports.w.get(w.name)!) {
        const appArgs = w.command ?? [...tessera, 'demo-app', '--name', w.name, '--instance', p.name, '--listen', `127.0.0.1:${p.app}`];
        log(`starting app ${p.name} on 127.0.0.1:${p.app}`);
        started.push(await start({
          name: `app-${p.name}`,
          command: appArgs[0]!,
          args: appArgs.slice(1),
          ...(w.cwd ? { cwd: w.cwd } : {}),
          env: { ...process.env, ...(w.env ?? {}), PORT: String(p.app), TESSERA_REPLICA: p.name },
          // A user's app need not print anything: wait for its port instead of a line.
          ready: w.command ? { port: p.app } : { line: /tessera demo-app: ready/ },
        }));
        // A join token is spent by the first SVID it gets: one per replica, all for the workload's ID.
        const token = await createToken(dataDir, workloadId(spec, w.name));
        const tokenFile = join(configDir, `${p.name}.token`);
        await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
        const cfg = join(configDir, `${p.name}-proxy.yaml`);
        await writeFile(cfg, proxyConfig(spec, w, p, ports.grpc, bundleFile, tokenFile, stateDir), { mode: 0o600 });
        log(`starting sidecar ${p.name} (inbound 127.0.0.1:${p.inbound}, admin 127.0.0.1:${p.admin})`);
        started.push(await start({ name: `sidecar-${p.name}`, command: tessera[0]!, args: [...tessera.slice(1), 'proxy', '--config', cfg], ready: { line: /tessera proxy: ready/ } }));
      }
    }

    const workloads: LaunchedWorkload[] = [];
    for (const w of spec.workloads) {
      const replicas: LaunchedReplica[] = [];
      for (const p of ports.w.get(w.name)!) {
        const adminUrl = `http://127.0.0.1:${p.admin}`;
        const certs = await fetchCerts(adminUrl);
        replicas.push({
          replica: p.name,
          appUrl: `http://127.0.0.1:${p.app}`,
          inbound: `127.0.0.1:${p.inbound}`,
          adminUrl,
          outbound: w.outbound.map((o) => ({ to: o.to, url: `http://127.0.0.1:${p.outbound.get(o.to)}` })),
          svidNotAfter: certs.notAfter,
          svidSerial: certs.serial,
        });
      }
      const { replica: _first, ...first } = replicas[0]!;
      workloads.push({ name: w.name, spiffeId: workloadId(spec, w.name), service: w.name, ...first, replicas });
    }
    log('waiting until every sidecar has discovered the replicas it calls');
    await awaitDiscovery(spec, workloads, opts);
    return {
      stateDir,
      dataDir,
      policiesDir,
      grpc: `127.0.0.1:${ports.grpc}`,
      adminUrl: `http://127.0.0.1:${ports.admin}`,
      workloads,
      portMoves: picker.moves,
      supervisor,
    };
  } catch (e) {
    await supervisor.stopAll(5_000);
    throw e;
  }
}
