// Starts a MeshSpec on loopback: control plane, one join token per workload, the apps and their sidecars, then
// reads each sidecar's /certs. Everything is a real child process under one ProcessSupervisor.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { ProcessSupervisor, type ProcessSpec, type SupervisedProcess } from '../../shared-io/process-supervisor.js';
import type { MeshSpec, MeshWorkload } from './mesh-spec.js';
import { workloadId } from './mesh-spec.js';
import { PortPicker } from './ports.js';

export interface LaunchedWorkload {
  readonly name: string;
  readonly spiffeId: string;
  readonly appUrl: string;
  readonly inbound: string;
  readonly adminUrl: string;
  readonly outbound: readonly { readonly to: string; readonly url: string }[];
  readonly svidNotAfter: string | null;
  readonly svidSerial: string | null;
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

export interface LaunchOptions {
  readonly stateDir: string;
  /** argv prefix that runs this very `tessera` (node + script). */
  readonly tessera: readonly string[];
  readonly log: (line: string) => void;
}

interface Ports {
  grpc: number;
  admin: number;
  w: Map<string, { app: number; inbound: number; admin: number; outbound: Map<string, number> }>;
}

async function pickPorts(spec: MeshSpec): Promise<{ ports: Ports; picker: PortPicker }> {
  const picker = new PortPicker();
  const ports: Ports = { grpc: await picker.pick(spec.controlPlane.grpcPort), admin: await picker.pick(spec.controlPlane.adminPort), w: new Map() };
  for (const w of spec.workloads) {
    // The app's own port is the user's choice: we do not move it, only check it later by the app starting.
    const outbound = new Map<string, number>();
    for (const o of w.outbound) outbound.set(o.to, await picker.pick(o.port));
    // Only the built-in demo apps can move; a user's own command listens where its mesh.yaml says.
    ports.w.set(w.name, { app: w.command ? w.appPort : await picker.pick(w.appPort), inbound: await picker.pick(w.inboundPort), admin: await picker.pick(w.adminPort), outbound });
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

function proxyConfig(spec: MeshSpec, w: MeshWorkload, ports: Ports, bundleFile: string, tokenFile: string, stateDir: string): string {
  const p = ports.w.get(w.name)!;
  const lines = [
    'identity:',
    '  controlPlane:',
    `    address: 127.0.0.1:${ports.grpc}`,
    `    bundleFile: ${JSON.stringify(bundleFile)}`,
    `    joinTokenFile: ${JSON.stringify(tokenFile)}`,
    'inbound:',
    `  - { name: ${w.name}, listen: 127.0.0.1:${p.inbound}, forwardTo: 127.0.0.1:${p.app}, protocol: ${w.protocol} }`,
  ];
  if (w.outbound.length > 0) {
    lines.push('outbound:');
    for (const o of w.outbound) {
      const target = spec.workloads.find((x) => x.name === o.to)!;
      lines.push(`  - { name: ${o.to}, listen: 127.0.0.1:${p.outbound.get(o.to)}, upstream: 127.0.0.1:${ports.w.get(o.to)!.inbound}, spiffeId: ${workloadId(spec, o.to)}, protocol: ${target.protocol} }`);
    }
  }
  lines.push(`admin: { listen: 127.0.0.1:${p.admin} }`, `workloadApi: { socket: ${JSON.stringify(join(stateDir, `${w.name}.workload.sock`))} }`, '');
  return lines.join('\n');
}

async function runOnce(args: readonly string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(args[0]!, args.slice(1), { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new TesseraError('TESSERA_ERR_UP_START_FAILED', `${args.slice(2).join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
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

export async function launchMesh(spec: MeshSpec, opts: LaunchOptions): Promise<LaunchedMesh> {
  const { stateDir, tessera, log } = opts;
  const dataDir = join(stateDir, 'control-plane');
  const policiesDir = join(stateDir, 'policies');
  const logDir = join(stateDir, 'logs');
  const configDir = join(stateDir, 'config');
  for (const d of [dataDir, policiesDir, logDir, configDir]) await mkdir(d, { recursive: true, mode: 0o700 });
  for (const [name, text] of Object.entries(spec.policies)) await writeFile(join(policiesDir, name), text);

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
      const p = ports.w.get(w.name)!;
      const appArgs = w.command ?? [...tessera, 'demo-app', '--name', w.name, '--listen', `127.0.0.1:${p.app}`];
      log(`starting app ${w.name} on 127.0.0.1:${p.app}`);
      started.push(await start({
        name: `app-${w.name}`,
        command: appArgs[0]!,
        args: appArgs.slice(1),
        ...(w.cwd ? { cwd: w.cwd } : {}),
        env: { ...process.env, ...(w.env ?? {}), PORT: String(p.app) },
        // A user's app need not print anything: wait for its port instead of a line.
        ready: w.command ? { port: p.app } : { line: /tessera demo-app: ready/ },
      }));
      const token = await runOnce([...tessera, 'token', 'create', '--data-dir', dataDir, '--spiffe-id', workloadId(spec, w.name), '--ttl', '10m']);
      const tokenFile = join(configDir, `${w.name}.token`);
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
      const cfg = join(configDir, `${w.name}-proxy.yaml`);
      await writeFile(cfg, proxyConfig(spec, w, ports, bundleFile, tokenFile, stateDir), { mode: 0o600 });
      log(`starting sidecar ${w.name} (inbound 127.0.0.1:${p.inbound}, admin 127.0.0.1:${p.admin})`);
      started.push(await start({ name: `sidecar-${w.name}`, command: tessera[0]!, args: [...tessera.slice(1), 'proxy', '--config', cfg], ready: { line: /tessera proxy: ready/ } }));
    }

    const workloads: LaunchedWorkload[] = [];
    for (const w of spec.workloads) {
      const p = ports.w.get(w.name)!;
      const adminUrl = `http://127.0.0.1:${p.admin}`;
      const certs = await fetchCerts(adminUrl);
      workloads.push({
        name: w.name,
        spiffeId: workloadId(spec, w.name),
        appUrl: `http://127.0.0.1:${p.app}`,
        inbound: `127.0.0.1:${p.inbound}`,
        adminUrl,
        outbound: w.outbound.map((o) => ({ to: o.to, url: `http://127.0.0.1:${p.outbound.get(o.to)}` })),
        svidNotAfter: certs.notAfter,
        svidSerial: certs.serial,
      });
    }
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
