// Scenario `issuance`: the real `tessera control-plane` process signing SVIDs over gRPC — join-token attestation
// (tokens made through admin.sock before each window) and renewal over mTLS — at concurrency 1 and 8: SVIDs per
// second, p50/p99 latency, and the control plane's CPU per SVID from /proc (the load generator is this process).
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { type RoundVariant, runRounds, scenarioResult } from '../harness/bench-context.js';
import { LatencyHistogram } from '../harness/latency-histogram.js';
import { machineInfo } from '../harness/machine.js';
import { clockTicksPerSecond, sampleTree } from '../harness/proc-stat.js';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { benchProcesses } from '../harness/bench-processes.js';
import type { BenchScenario, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { TESSERA_CLI } from '../peers/topology.js';
import { ISSUANCE_VARIANTS, type IssuanceVariantSpec, issuanceHeadlines, issuanceMeasurement, issuanceSummary } from './issuance-summary.js';

const TD = 'bench.test';
const CONTROL_PLANE_ID = `spiffe://${TD}/tessera/control-plane`;
const CSR_POOL = 32;
/** Upper bound on the tokens made for one window, whatever the warm-up rate suggests. */
const MAX_TOKENS = 50_000;
const TOKEN_CREATION_PARALLELISM = 16;

type Untyped = grpc.Client & Record<string, (...a: unknown[]) => unknown>;
interface SignResponse {
  svid_chain: Buffer[];
  bundles: { x509_authorities: Buffer[] }[];
}

interface Server {
  readonly pid: number;
  readonly grpc: string;
  readonly dataDir: string;
  readonly bundlePem: string;
}

async function startServer(group: ProcessSupervisor, dir: string): Promise<Server> {
  // The per-identity rate limit is lifted: renewal drives one identity per lane as fast as it goes.
  const config = ['trustDomain: bench.test', 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'logLevel: warn', 'svid: { rateLimit: { burst: 1000000, perMinute: 100000000 } }', ''];
  await writeFile(join(dir, 'cp.yaml'), config.join('\n'));
  const cli = process.env['TESSERA_BENCH_CLI'] ?? TESSERA_CLI;
  const started = await group.start({ name: 'control-plane', command: process.execPath, args: [cli, 'control-plane', '--config', join(dir, 'cp.yaml')], cwd: dir, ready: { line: /tessera control-plane: ready/ } });
  const m = /tessera control-plane: grpc (\S+)/.exec(await readFile(started.logFile!, 'utf8'));
  if (!m) throw new Error(`no address line in ${started.logFile}`);
  const dataDir = join(dir, 'data');
  return { pid: started.pid, grpc: m[1]!, dataDir, bundlePem: await readFile(join(dataDir, 'bundle.pem'), 'utf8') };
}

/** One channel per lane (its own connection: a local subchannel pool), server checked by SPIFFE ID. */
function identityClient(server: Server, svid?: { keyPem: string; chainPem: string }): Untyped {
  const creds = grpc.credentials.createSsl(Buffer.from(server.bundlePem), svid ? Buffer.from(svid.keyPem) : null, svid ? Buffer.from(svid.chainPem) : null, {
    checkServerIdentity: (_host, cert) => {
      const san = cert.raw ? new X509Certificate(cert.raw).subjectAltName : undefined;
      return san === `URI:${CONTROL_PLANE_ID}` ? undefined : new Error(`unexpected control plane identity ${san}`);
    },
  });
  const Identity = loadTesseraServices().identity;
  return new Identity(server.grpc, creds, {
    'grpc.ssl_target_name_override': 'tessera-control-plane',
    'grpc.default_authority': 'tessera-control-plane',
    'grpc.use_local_subchannel_pool': 1,
  }) as Untyped;
}

function sign(client: Untyped, req: Record<string, unknown>): Promise<SignResponse> {
  return new Promise((resolve, reject) => {
    client.SignSvid!(req, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: SignResponse) => (err ? reject(err) : resolve(res)));
  });
}

/** Makes `n` join tokens through admin.sock, each for its own workload ID. */
async function createTokens(server: Server, n: number, prefix: string): Promise<string[]> {
  const out: string[] = new Array(n);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) {
      const r = await adminRequest<{ token: string }>(server.dataDir, 'POST', '/v1/tokens', { spiffeId: `spiffe://${TD}/ns/bench/sa/${prefix}-${i}`, ttlMs: 3_600_000 });
      out[i] = r.token;
    }
  };
  await Promise.all(Array.from({ length: Math.min(TOKEN_CREATION_PARALLELISM, n) }, lane));
  return out;
}

interface Drive {
  readonly issued: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly wallMs: number;
  readonly hist: LatencyHistogram;
  readonly exhausted: boolean;
}

/** `lanes` callers, one outstanding SignSvid each, until the deadline or until `requests` runs dry. */
async function drive(clients: readonly Untyped[], durationMs: number, request: (i: number) => Record<string, unknown> | null): Promise<Drive> {
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
          await sign(client, req);
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

interface Fixture {
  readonly server: Server;
  readonly csrs: readonly Buffer[];
  /** Per lane: a TLS client (join tokens) and an mTLS client with that lane's own SVID (renewal). */
  readonly tlsClients: readonly Untyped[];
  readonly mtlsClients: readonly Untyped[];
  readonly clk: number;
  readonly notes: string[];
}

function variant(f: Fixture, v: IssuanceVariantSpec, opts: ScenarioOptions): RoundVariant {
  return {
    name: v.name,
    async run(round) {
      const lanes = (v.mode === 'join token' ? f.tlsClients : f.mtlsClients).slice(0, v.concurrency);
      const csr = (i: number) => f.csrs[i % f.csrs.length]!;
      let request: (i: number) => Record<string, unknown> | null;
      if (v.mode === 'join token') {
        // Warm up on a small batch, then make enough tokens for the window at the warm-up rate (with headroom).
        const warm = await createTokens(f.server, 50 * v.concurrency, `r${round}-c${v.concurrency}-warm`);
        const w = await drive(lanes, opts.warmupMs, (i) => (i < warm.length ? { csr: csr(i), join_token: warm[i] } : null));
        const rate = w.issued / Math.max(1, w.wallMs);
        const tokens = await createTokens(f.server, Math.min(MAX_TOKENS, Math.ceil(rate * opts.durationMs * 1.5) + 10 * v.concurrency), `r${round}-c${v.concurrency}`);
        request = (i) => (i < tokens.length ? { csr: csr(i), join_token: tokens[i] } : null);
      } else {
        request = (i) => ({ csr: csr(i) });
        await drive(lanes, opts.warmupMs, request);
      }
      const cpu0 = sampleTree(f.server.pid).cpuTicks;
      const client0 = process.cpuUsage();
      const d = await drive(lanes, opts.durationMs, request);
      const client = process.cpuUsage(client0);
      const serverTicks = sampleTree(f.server.pid).cpuTicks - cpu0;
      if (d.firstError) f.notes.push(`${v.name}, round ${round + 1}: ${d.errors} failed calls, first: ${d.firstError}`);
      return {
        ...issuanceMeasurement({
          issued: d.issued,
          errors: d.errors,
          wallMs: d.wallMs,
          serverCpuMs: (serverTicks * 1000) / f.clk,
          clientCpuMs: (client.user + client.system) / 1000,
          p50Ms: d.hist.quantileMs(0.5),
          p99Ms: d.hist.quantileMs(0.99),
          maxMs: d.hist.quantileMs(1),
          ranOutOfTokens: d.exhausted,
        }),
        concurrency: v.concurrency,
      };
    },
  };
}

async function setUp(group: ProcessSupervisor, dir: string, lanes: number, clk: number): Promise<Fixture> {
  const server = await startServer(group, dir);
  // CSRs are made before any window (a workload makes one per renewal, on its own CPU): a pool, reused.
  const csrs = await Promise.all(Array.from({ length: CSR_POOL }, () => createCsr(generateKeyPair(), {})));
  const tlsClients = Array.from({ length: lanes }, () => identityClient(server));
  // Each renewal lane is one workload: its first SVID from a join token, then renewals authenticated by it.
  const tokens = await createTokens(server, lanes, 'renewer');
  const mtlsClients = await Promise.all(
    tokens.map(async (token, i) => {
      const key = generateKeyPair();
      const res = await sign(tlsClients[i]!, { csr: await createCsr(key, {}), join_token: token });
      const chainPem = res.svid_chain.map((d) => new X509Certificate(d).toString()).join('');
      return identityClient(server, { keyPem: privateKeyPem(key), chainPem });
    }),
  );
  return { server, csrs, tlsClients, mtlsClients, clk, notes: [] };
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const clk = clockTicksPerSecond();
  const machine = await machineInfo(clk);
  const dir = await mkdtemp(join(opts.workDir, 'issuance-'));
  const group = benchProcesses(dir, opts.signal);
  const lanes = Math.max(...ISSUANCE_VARIANTS.map((v) => v.concurrency));
  let fixture: Fixture | undefined;
  try {
    opts.progress(0, 'starting the control plane');
    fixture = await setUp(group, dir, lanes, clk);
    const f = fixture;
    const measurements = await runRounds(
      opts,
      ISSUANCE_VARIANTS.map((v) => variant(f, v, opts)),
      (m) => `${m['svidsPerSec']} SVIDs/s, p50 ${m['p50Ms']} ms, p99 ${m['p99Ms']} ms, server CPU ${m['serverCpuMsPerSvid']} ms/SVID${m['errors'] ? `, ${m['errors']} errors` : ''}`,
    );
    return scenarioResult({ opts, machine, startedAt }, 'issuance', {
      measurements,
      summary: issuanceSummary(measurements),
      headlines: issuanceHeadlines(measurements),
      notes: [
        'The real `tessera control-plane` process (CLI, default config but the per-identity rate limit lifted, logLevel warn, SQLite in a temp dir) on loopback; the load generator is this process, one grpc-js channel per lane, connected before the window (no handshake in the figures).',
        'join token: each SignSvid spends a fresh single-use token for its own workload ID (tokens made through admin.sock before the window, sized from a warm-up) with a no-SAN P-256 CSR; the server parses and verifies the CSR, looks up and spends the token, signs, and writes inventory + audit (SQLite and audit.log).',
        'renewal (mTLS): each lane is one workload renewing with its current SVID as the client certificate and no other evidence (chain verified against the bundle per call).',
        `CSRs come from a pool of ${CSR_POOL} made before the run. Server CPU = utime+stime of the control-plane process from /proc over the window (${clk} ticks/s) ÷ SVIDs issued; client CPU = this process.`,
        ...f.notes,
      ],
      options: { concurrencyLevels: '1, 8', csrPool: CSR_POOL },
    });
  } finally {
    for (const c of [...(fixture?.tlsClients ?? []), ...(fixture?.mtlsClients ?? [])]) c.close();
    await group.stopAll();
  }
}

export const issuanceScenario: BenchScenario = {
  name: 'issuance',
  summary: 'SVIDs signed per second, p50/p99 latency and control-plane CPU per SVID: join tokens and mTLS renewal, concurrency 1 and 8',
  defaults: { durationMs: 3_000, warmupMs: 500, rounds: 3, connections: 8 },
  run,
};

// Standalone: `node dist/bench/scenarios/issuance.js` prints the result JSON on stdout, progress on stderr.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await issuanceScenario.run({
    durationMs: 3_000,
    warmupMs: 500,
    rounds: 3,
    connections: 8,
    workDir: await mkdtemp(join(tmpdir(), 'tessera-bench-')),
    log: (line) => process.stderr.write(`${line}\n`),
    progress: () => {},
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
