// Starts the real `tessera control-plane` child process on loopback (port 0) for integration tests, and gives a
// grpc-js client of its Identity, Config and Discovery services (server checked by SPIFFE ID, optional client SVID).
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../common/contract/error-metadata.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { startReadyProcess } from './ready-process.js';

export const TD = 'example.org';
export const CONTROL_PLANE_ID = `spiffe://${TD}/tessera/control-plane`;

export interface RunningControlPlane {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly dataDir: string;
  readonly policiesDir: string;
  readonly configFile: string;
  readonly grpc: string;
  readonly admin: string;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** SIGTERM, then the exit code (SIGKILL after the deadline, which then fails the caller's expectation). */
  stop(deadlineMs?: number): Promise<number | null>;
}

/**
 * A join token from the running control plane's admin.sock, the request `tessera token create` makes, without a node
 * start per token (the command itself is exercised by the tests that are about it).
 */
export async function createJoinToken(dataDir: string, spiffeId: string, ttlMs?: number): Promise<string> {
  return (await adminRequest<{ token: string }>(dataDir, 'POST', '/v1/tokens', { spiffeId, ...(ttlMs ? { ttlMs } : {}) })).token;
}

/** `listen`: a fixed address for a control plane that must come back where its proxies look for it after a restart. */
export async function writeControlPlaneConfig(dir: string, extra = '', listen = '127.0.0.1:0'): Promise<string> {
  await mkdir(join(dir, 'policies'), { recursive: true });
  const file = join(dir, 'cp.yaml');
  await writeFile(file, [`trustDomain: ${TD}`, 'dataDir: ./data', `listen: ${listen}`, 'adminListen: 127.0.0.1:0', 'policies: { dir: ./policies }', 'logLevel: warn', extra, ''].join('\n'));
  return file;
}

/** Spawns the control plane on an existing config and waits (bounded) for its ready line. */
export async function startControlPlaneProcess(dir: string, configFile: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 20_000): Promise<RunningControlPlane> {
  const p = await startReadyProcess(['control-plane', '--config', configFile], 'tessera control-plane: ready', { env, timeoutMs });
  const m = /tessera control-plane: grpc (\S+) admin (\S+)/.exec(p.stdout());
  if (!m) throw new Error(`no address line in: ${p.stdout()}`);
  return {
    proc: p.proc,
    dir,
    dataDir: join(dir, 'data'),
    policiesDir: join(dir, 'policies'),
    configFile,
    grpc: m[1]!,
    admin: m[2]!,
    stdout: p.stdout,
    stderr: p.stderr,
    stop: p.stop,
  };
}

export interface ClientSvid {
  readonly keyPem: string;
  readonly chainPem: string;
}

type Untyped = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

/**
 * grpc-js clients of Identity and Config; the server must present the control plane's SPIFFE ID. `channel`: more
 * grpc-js channel options (keepalive PINGs).
 */
export function controlPlaneClients(address: string, bundlePem: string, svid?: ClientSvid, channel: grpc.ChannelOptions = {}): { identity: Untyped; config: Untyped; discovery: Untyped; close(): void } {
  const services = loadTesseraServices();
  const creds = grpc.credentials.createSsl(Buffer.from(bundlePem), svid ? Buffer.from(svid.keyPem) : null, svid ? Buffer.from(svid.chainPem) : null, {
    checkServerIdentity: (_host, cert) => {
      const san = cert.raw ? new X509Certificate(cert.raw).subjectAltName : undefined;
      return san === `URI:${CONTROL_PLANE_ID}` ? undefined : new Error(`unexpected control plane identity ${san}`);
    },
  });
  const options = { 'grpc.ssl_target_name_override': 'tessera-control-plane', 'grpc.default_authority': 'tessera-control-plane', ...channel };
  const identity = new services.identity(address, creds, options) as Untyped;
  const config = new services.config(address, creds, options) as Untyped;
  const discovery = new services.discovery(address, creds, options) as Untyped;
  return {
    identity,
    config,
    discovery,
    close() {
      identity.close();
      config.close();
      discovery.close();
    },
  };
}

export interface SignAnswer {
  readonly err: grpc.ServiceError | null;
  readonly res: { svid_chain: Buffer[]; bundles: { trust_domain: string; x509_authorities: Buffer[] }[]; spiffe_id: string; serial: string; not_after_unix_ms: string } | undefined;
}

export function signSvid(identity: Untyped, req: Record<string, unknown>): Promise<SignAnswer> {
  return new Promise((resolve) => {
    identity.SignSvid!(req, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: SignAnswer['res']) => resolve({ err, res }));
  });
}

/** The stable code a refusal carries in the "tessera-error-code" metadata. */
export function errorCode(err: grpc.ServiceError | null): string | undefined {
  return err?.metadata?.get(ERROR_CODE_METADATA)[0]?.toString();
}

/** SignSvid with a join token and a fresh key (made here, never sent): the request `svid fetch --join-token` makes. */
export async function joinTokenSign(cp: Pick<RunningControlPlane, 'grpc'>, bundlePem: string, token: string): Promise<SignAnswer & { readonly keyPem: string }> {
  const c = controlPlaneClients(cp.grpc, bundlePem);
  try {
    const key = generateKeyPair();
    return { ...(await signSvid(c.identity, { csr: await createCsr(key, {}), join_token: token })), keyPem: privateKeyPem(key) };
  } finally {
    c.close();
  }
}

/**
 * An SVID for `spiffeId` from `cp` through SignSvid with a fresh join token, without a `token create` and an
 * `svid fetch` start; `serial` as `svid fetch` prints it (lower-case hex).
 */
export async function joinTokenSvid(cp: Pick<RunningControlPlane, 'grpc' | 'dataDir'>, bundlePem: string, spiffeId: string): Promise<ClientSvid & { readonly serial: string }> {
  const r = await joinTokenSign(cp, bundlePem, await createJoinToken(cp.dataDir, spiffeId));
  if (r.err) throw r.err;
  const chainPem = r.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('');
  return { chainPem, keyPem: r.keyPem, serial: new X509Certificate(chainPem).serialNumber.toLowerCase() };
}

/**
 * A ban or its lift over admin.sock, the request `tessera revoke id|serial` / `revoke lift` makes: for tests about
 * how a ban is enforced rather than about the command.
 */
export async function setBan(dataDir: string, action: 'ban' | 'lift', kind: 'spiffe_id' | 'serial', value: string): Promise<void> {
  await adminRequest(dataDir, 'POST', action === 'ban' ? '/v1/revocations' : '/v1/revocations/lift', { kind, value, reason: '', createdBy: 'test' });
}
