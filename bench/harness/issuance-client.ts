// What the issuance scenarios share: a real `tessera control-plane` child process (any store), grpc-js Identity
// clients that check the control plane's SPIFFE ID (TLS for join tokens, mTLS with a workload's SVID for renewal),
// join tokens made through admin.sock, and a closed-loop SignSvid driver with a latency histogram.
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { TESSERA_CLI } from '../peers/topology.js';
import { LatencyHistogram } from './latency-histogram.js';

export const ISSUANCE_TD = 'bench.test';
const CONTROL_PLANE_ID = `spiffe://${ISSUANCE_TD}/tessera/control-plane`;
const TOKEN_CREATION_PARALLELISM = 16;

export type IdentityClient = grpc.Client & Record<string, (...a: unknown[]) => unknown>;
interface SignResponse {
  svid_chain: Buffer[];
  bundles: { x509_authorities: Buffer[] }[];
}

export interface IssuingServer {
  readonly pid: number;
  readonly grpc: string;
  readonly dataDir: string;
  readonly bundlePem: string;
  /** The admin HTTP listener (/ready, /metrics). */
  readonly admin: string;
}

/**
 * Starts `tessera control-plane` in `dir` (data in `dir/data`), with the per-identity rate limit lifted: renewal
 * drives one identity per lane as fast as it goes. `extraConfig` lines are appended (e.g. a `store:` line).
 */
export async function startIssuingServer(group: ProcessSupervisor, dir: string, name: string, extraConfig: readonly string[] = []): Promise<IssuingServer> {
  const config = [`trustDomain: ${ISSUANCE_TD}`, 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'logLevel: warn', 'svid: { rateLimit: { burst: 1000000, perMinute: 100000000 } }', ...extraConfig, ''];
  await writeFile(join(dir, 'cp.yaml'), config.join('\n'));
  const cli = process.env['TESSERA_BENCH_CLI'] ?? TESSERA_CLI;
  const started = await group.start({ name, command: process.execPath, args: [cli, 'control-plane', '--config', join(dir, 'cp.yaml')], cwd: dir, ready: { line: /tessera control-plane: ready/ } });
  const m = /tessera control-plane: grpc (\S+) admin (\S+)/.exec(await readFile(started.logFile!, 'utf8'));
  if (!m) throw new Error(`no address line in ${started.logFile}`);
  const dataDir = join(dir, 'data');
  return { pid: started.pid, grpc: m[1]!, admin: m[2]!, dataDir, bundlePem: await readFile(join(dataDir, 'bundle.pem'), 'utf8') };
}

/** TLS to the control plane, checked by its SPIFFE ID (mTLS with `svid`), on a connection of its own. */
export function controlPlaneChannel(server: Pick<IssuingServer, 'bundlePem'>, svid?: { keyPem: string; chainPem: string }): { creds: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const creds = grpc.credentials.createSsl(Buffer.from(server.bundlePem), svid ? Buffer.from(svid.keyPem) : null, svid ? Buffer.from(svid.chainPem) : null, {
    checkServerIdentity: (_host, cert) => {
      const san = cert.raw ? new X509Certificate(cert.raw).subjectAltName : undefined;
      return san === `URI:${CONTROL_PLANE_ID}` ? undefined : new Error(`unexpected control plane identity ${san}`);
    },
  });
  return { creds, options: { 'grpc.ssl_target_name_override': 'tessera-control-plane', 'grpc.default_authority': 'tessera-control-plane', 'grpc.use_local_subchannel_pool': 1 } };
}

/** One channel per lane (its own connection: a local subchannel pool), server checked by SPIFFE ID. */
export function identityClient(server: IssuingServer, svid?: { keyPem: string; chainPem: string }): IdentityClient {
  const { creds, options } = controlPlaneChannel(server, svid);
  const Identity = loadTesseraServices().identity;
  return new Identity(server.grpc, creds, options) as IdentityClient;
}

export function signSvid(client: IdentityClient, req: Record<string, unknown>): Promise<SignResponse> {
  return new Promise((resolve, reject) => {
    client.SignSvid!(req, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: SignResponse) => (err ? reject(err) : resolve(res)));
  });
}

/** Makes `n` join tokens through `server`'s admin.sock, each for its own workload ID. */
export async function createJoinTokens(server: Pick<IssuingServer, 'dataDir'>, n: number, prefix: string): Promise<string[]> {
  const out: string[] = new Array(n);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) {
      const r = await adminRequest<{ token: string }>(server.dataDir, 'POST', '/v1/tokens', { spiffeId: `spiffe://${ISSUANCE_TD}/ns/bench/sa/${prefix}-${i}`, ttlMs: 3_600_000 });
      out[i] = r.token;
    }
  };
  await Promise.all(Array.from({ length: Math.min(TOKEN_CREATION_PARALLELISM, n) }, lane));
  return out;
}

/** A workload of its own: attests once with `token` through `tlsClient`, then an mTLS client renewing with that SVID. */
export async function renewingClient(server: IssuingServer, tlsClient: IdentityClient, token: string): Promise<IdentityClient> {
  const key = generateKeyPair();
  const res = await signSvid(tlsClient, { csr: await createCsr(key, {}), join_token: token });
  const chainPem = res.svid_chain.map((d) => new X509Certificate(d).toString()).join('');
  return identityClient(server, { keyPem: privateKeyPem(key), chainPem });
}

export interface Drive {
  readonly issued: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly wallMs: number;
  readonly hist: LatencyHistogram;
  readonly exhausted: boolean;
}

/** One caller per client, one outstanding SignSvid each, until the deadline or until `request` runs dry (null). */
export async function driveSignSvid(clients: readonly IdentityClient[], durationMs: number, request: (i: number) => Record<string, unknown> | null): Promise<Drive> {
  const hist = new LatencyHistogram();
  let issued = 0;
  let errors = 0;
  let firstError: string | null = null;
  let exhausted = false;
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const req = request(next++);
        if (!req) {
          exhausted = true;
          return;
        }
        const s = performance.now();
        try {
          await signSvid(client, req);
          hist.recordMs(performance.now() - s);
          issued++;
        } catch (e) {
          errors++;
          firstError ??= (e as grpc.ServiceError).details ?? String(e);
        }
      }
    }),
  );
  return { issued, errors, firstError, wallMs: performance.now() - t0, hist, exhausted };
}
