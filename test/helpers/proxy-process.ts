// Starts real `tessera proxy` child processes for integration tests: writes SVID files minted by the test CA,
// waits for the ready line, reads the bound ports from the (JSON) listening line, and stops with SIGTERM.
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createJoinToken } from './control-plane.js';
import { startReadyProcess } from './ready-process.js';
import type { TestCa } from './test-ca.js';

export interface ProxyProcess {
  readonly child: ChildProcess;
  readonly admin: number;
  readonly ports: ReadonlyMap<string, number>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM; resolves with the exit code (SIGKILL after `deadlineMs`, default 15 s). */
  stop(deadlineMs?: number): Promise<number | null>;
}

export async function writeSvidFiles(ca: TestCa, id: string, dir: string, opts: { notAfter?: Date; notBefore?: Date } = {}): Promise<{ certFile: string; keyFile: string; bundleFile: string; serial: string }> {
  await mkdir(dir, { recursive: true });
  const svid = await ca.mintSvid(id, opts);
  const certFile = join(dir, 'svid.pem');
  const keyFile = join(dir, 'key.pem');
  const bundleFile = join(dir, 'bundle.pem');
  await writeFile(certFile, svid.chainPem);
  await writeFile(keyFile, svid.keyPem, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(bundleFile, ca.bundlePem());
  return { certFile, keyFile, bundleFile, serial: svid.leaf.serialNumber.toLowerCase() };
}

/** The proxy's stdout holds JSON lines only (lifecycle and access log); this is its "listening" line. */
/** The PEM texts of SVID files, as a TLS client (or server) takes them: cert, key and the bundle as `ca`. */
export async function tlsOptionsOf(f: { readonly certFile: string; readonly keyFile: string; readonly bundleFile: string }): Promise<{ cert: string; key: string; ca: string }> {
  const [cert, key, ca] = await Promise.all([readFile(f.certFile, 'utf8'), readFile(f.keyFile, 'utf8'), readFile(f.bundleFile, 'utf8')]);
  return { cert, key, ca };
}

export function readListeningLine(stdout: string): { admin: string; listeners: Record<string, number> } {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { msg?: string; admin: string; listeners: Record<string, number> };
    if (rec.msg === 'tessera proxy: listening') return rec;
  }
  throw new Error(`no listening line in:\n${stdout}`);
}

export async function startProxyProcess(configFile: string, timeoutMs = 20_000, env?: NodeJS.ProcessEnv): Promise<ProxyProcess> {
  const p = await startReadyProcess(['proxy', '--config', configFile], 'tessera proxy: ready', { timeoutMs, ...(env ? { env } : {}) });
  const listening = readListeningLine(p.stdout());
  const ports = new Map<string, number>(Object.entries(listening.listeners));
  const admin = Number(/:(\d+)$/.exec(listening.admin)![1]);
  return { child: p.proc, admin, ports, stdout: p.stdout, stderr: p.stderr, stop: (deadlineMs?: number) => p.stop(deadlineMs) };
}

/**
 * The config of a proxy whose identity comes from a running control plane: creates a join token for `id` (10 min)
 * on its admin socket, writes it (0600) and the config `<name>.yaml` in `dir` (`body` = listeners, `tail` = the
 * rest). The proxy can be started later, e.g. while the control plane is down.
 */
export async function writeAttestedConfig(
  cp: { readonly dataDir: string; readonly grpc: string },
  dir: string,
  name: string,
  id: string,
  body: string,
  tail = 'telemetry: { accessLog: off }\n',
): Promise<{ readonly configFile: string; readonly token: string }> {
  const token = await createJoinToken(cp.dataDir, id, 600_000);
  await writeFile(join(dir, `${name}.token`), token, { mode: 0o600 });
  const configFile = join(dir, `${name}.yaml`);
  await writeFile(
    configFile,
    `identity:\n  controlPlane: { address: ${cp.grpc}, bundleFile: ${join(cp.dataDir, 'bundle.pem')}, joinTokenFile: ${name}.token }\n${body}admin: { listen: 127.0.0.1:0 }\n${tail}`,
  );
  return { configFile, token };
}

/**
 * A proxy whose identity comes from a running control plane (writeAttestedConfig), started and awaited. The token
 * is returned too (tests that search logs for it need it).
 */
export async function startAttestedProxy(
  cp: { readonly dataDir: string; readonly grpc: string },
  dir: string,
  name: string,
  id: string,
  body: string,
  tail?: string,
): Promise<ProxyProcess & { readonly token: string }> {
  const { configFile, token } = await writeAttestedConfig(cp, dir, name, id, body, tail);
  return Object.assign(await startProxyProcess(configFile, 30_000), { token });
}
