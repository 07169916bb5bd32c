// Scenario `issuance-store`: SignSvid against real `tessera control-plane` processes on each store — SQLite with
// 1 replica, PostgreSQL with 1 and with 3 replicas (one private PostgreSQL server, a database per deployment) —
// for mTLS renewal and join-token attestation, N lanes spread over the replicas: SVIDs per second, p50/p99
// latency, and CPU per SVID of the replicas and of PostgreSQL from /proc (the load generator is this process).
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { type RoundVariant, runRounds, scenarioResult } from '../harness/bench-context.js';
import { benchProcesses } from '../harness/bench-processes.js';
import { createJoinTokens, driveSignSvid, type IdentityClient, type IssuingServer, identityClient, renewingClient, startIssuingServer } from '../harness/issuance-client.js';
import { machineInfo } from '../harness/machine.js';
import { type BenchPostgres, postgresBinDir, startBenchPostgres } from '../harness/postgres-server.js';
import { clockTicksPerSecond, cpuShares, readCpuTimes, sampleTree } from '../harness/proc-stat.js';
import { runStandalone } from '../harness/standalone.js';
import type { BenchScenario, Measurement, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { STORE_DEPLOYMENTS, STORE_VARIANTS, type StoreDeployment, type StoreVariantSpec, storeHeadlines, storeMeasurement, storeSummary } from './issuance-store-summary.js';

const CSR_POOL = 32;
/** Upper bound on the tokens made for one window, whatever the warm-up rate suggests. */
const MAX_TOKENS = 50_000;
/** Join tokens per lane for a warm-up window (its rate sizes the measured window's batch). */
const WARM_TOKENS_PER_LANE = 25;

/** One deployment, up: its replicas and, per lane (lane i on replica i mod R), a TLS and an mTLS client. */
interface Deployment {
  readonly spec: StoreDeployment;
  readonly key: string;
  readonly servers: readonly IssuingServer[];
  readonly tlsClients: readonly IdentityClient[];
  readonly mtlsClients: readonly IdentityClient[];
}

interface Fixture {
  readonly deployments: ReadonlyMap<string, Deployment>;
  readonly postgres: BenchPostgres | null;
  readonly csrs: readonly Buffer[];
  readonly clk: number;
  readonly notes: string[];
}

const keyOf = (d: StoreDeployment) => `${d.store}${d.replicas}`;

async function startDeployment(group: ProcessSupervisor, dir: string, spec: StoreDeployment, pg: BenchPostgres | null, lanes: number): Promise<Deployment> {
  const key = keyOf(spec);
  const servers: IssuingServer[] = [];
  // One after the other: the first PostgreSQL replica creates the shared CA, the next ones load it.
  for (let r = 1; r <= spec.replicas; r++) {
    const cpDir = join(dir, `${key}-${r}`);
    await mkdir(cpDir);
    const store = spec.store === 'postgres' ? [`store: { kind: postgres, url: "${pg!.url(`tessera_${key}`)}", replica: ${key}-${r} }`] : [];
    servers.push(await startIssuingServer(group, cpDir, `cp-${key}-${r}`, store));
  }
  const on = (lane: number) => servers[lane % servers.length]!;
  const tlsClients = Array.from({ length: lanes }, (_, i) => identityClient(on(i)));
  // Each renewal lane is one workload of its replica: its first SVID from a join token, then renewals with it.
  const tokens = await createJoinTokens(servers[0]!, lanes, `${key}-renewer`);
  const mtlsClients = await Promise.all(tokens.map((t, i) => renewingClient(on(i), tlsClients[i]!, t)));
  return { spec, key, servers, tlsClients, mtlsClients };
}

function variant(f: Fixture, v: StoreVariantSpec, opts: ScenarioOptions): RoundVariant {
  return {
    name: v.name,
    async run(round): Promise<Measurement> {
      const d = f.deployments.get(keyOf(v.deployment));
      if (!d) return { skipped: 'PostgreSQL not available (see the notes)' };
      const lanes = v.mode === 'join token' ? d.tlsClients : d.mtlsClients;
      const csr = (i: number) => f.csrs[i % f.csrs.length]!;
      let request: (i: number) => Record<string, unknown> | null;
      if (v.mode === 'join token') {
        // Tokens through the first replica's admin.sock; with PostgreSQL every replica spends from the same table.
        const warm = await createJoinTokens(d.servers[0]!, WARM_TOKENS_PER_LANE * lanes.length, `r${round}-${d.key}-warm`);
        const w = await driveSignSvid(lanes, opts.warmupMs, (i) => (i < warm.length ? { csr: csr(i), join_token: warm[i] } : null));
        const rate = w.issued / Math.max(1, w.wallMs);
        const tokens = await createJoinTokens(d.servers[0]!, Math.min(MAX_TOKENS, Math.ceil(rate * opts.durationMs * 1.5) + 10 * lanes.length), `r${round}-${d.key}`);
        request = (i) => (i < tokens.length ? { csr: csr(i), join_token: tokens[i] } : null);
      } else {
        request = (i) => ({ csr: csr(i) });
        await driveSignSvid(lanes, opts.warmupMs, request);
      }
      const serverTicks = () => d.servers.reduce((a, s) => a + sampleTree(s.pid).cpuTicks, 0);
      const pgTicks = () => (d.spec.store === 'postgres' && f.postgres ? f.postgres.cpuTicks() : null);
      const cp0 = serverTicks();
      const pg0 = pgTicks();
      const busy0 = readCpuTimes();
      const client0 = process.cpuUsage();
      const r = await driveSignSvid(lanes, opts.durationMs, request);
      const client = process.cpuUsage(client0);
      const busy = cpuShares(busy0, readCpuTimes()).busy;
      const pg1 = pgTicks();
      const cp1 = serverTicks();
      if (r.firstError) f.notes.push(`${v.name}, round ${round + 1}: ${r.errors} failed calls, first: ${r.firstError}`);
      const ms = (ticks: number) => (ticks * 1000) / f.clk;
      return storeMeasurement({
        issued: r.issued,
        errors: r.errors,
        wallMs: r.wallMs,
        serverCpuMs: ms(cp1 - cp0),
        postgresCpuMs: pg0 !== null && pg1 !== null ? ms(pg1 - pg0) : null,
        clientCpuMs: (client.user + client.system) / 1000,
        p50Ms: r.hist.quantileMs(0.5),
        p99Ms: r.hist.quantileMs(0.99),
        maxMs: r.hist.quantileMs(1),
        ranOutOfTokens: r.exhausted,
        replicas: d.servers.length,
        lanes: lanes.length,
        machineBusy: busy,
      });
    },
  };
}

/** `held.postgres` is set as soon as the server runs, so that a failed set-up still removes its directory. */
async function setUp(group: ProcessSupervisor, dir: string, opts: ScenarioOptions, clk: number, held: { postgres: BenchPostgres | null }): Promise<Fixture> {
  const notes: string[] = [];
  const lanes = opts.connections;
  // CSRs are made before any window (a workload makes one per renewal, on its own CPU): a pool, reused.
  const csrs = await Promise.all(Array.from({ length: CSR_POOL }, () => createCsr(generateKeyPair(), {})));
  let postgres: BenchPostgres | null = null;
  if (postgresBinDir()) {
    opts.progress(0, 'starting PostgreSQL');
    const dbs = STORE_DEPLOYMENTS.filter((d) => d.store === 'postgres').map((d) => `tessera_${keyOf(d)}`);
    postgres = await startBenchPostgres(group, dbs);
    held.postgres = postgres;
  } else {
    notes.push('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): the PostgreSQL rows were skipped; `apt-get install -y postgresql` runs them.');
  }
  const deployments = new Map<string, Deployment>();
  for (const spec of STORE_DEPLOYMENTS) {
    if (spec.store === 'postgres' && !postgres) continue;
    opts.progress(0, `starting ${spec.label}`);
    deployments.set(keyOf(spec), await startDeployment(group, dir, spec, postgres, lanes));
  }
  return { deployments, postgres, csrs, clk, notes };
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const clk = clockTicksPerSecond();
  const machine = await machineInfo(clk);
  const dir = await mkdtemp(join(opts.workDir, 'issuance-store-'));
  const group = benchProcesses(dir, opts.signal);
  const held: { postgres: BenchPostgres | null } = { postgres: null };
  let fixture: Fixture | undefined;
  try {
    fixture = await setUp(group, dir, opts, clk, held);
    const f = fixture;
    if (f.postgres) machine['postgres'] = f.postgres.version;
    const measurements = await runRounds(
      opts,
      STORE_VARIANTS.map((v) => variant(f, v, opts)),
      (m) =>
        m['skipped']
          ? `skipped: ${m['skipped']}`
          : `${m['svidsPerSec']} SVIDs/s, p50 ${m['p50Ms']} ms, p99 ${m['p99Ms']} ms, CPU ms/SVID: control plane ${m['serverCpuMsPerSvid']}${m['postgresCpuMsPerSvid'] !== null ? ` + PostgreSQL ${m['postgresCpuMsPerSvid']}` : ''}${m['errors'] ? `, ${m['errors']} errors` : ''}`,
    );
    return scenarioResult({ opts, machine, startedAt }, 'issuance-store', {
      measurements,
      summary: storeSummary(measurements),
      headlines: storeHeadlines(measurements),
      notes: [
        `Real \`tessera control-plane\` processes (CLI, default config but the per-identity rate limit lifted, logLevel warn) on loopback: SQLite ×1 = one process with its SQLite file in its data dir; PostgreSQL ×1 and ×3 = \`store: { kind: postgres, url }\`, each deployment its own database on one private PostgreSQL server started by the harness (\`postgres\` in the foreground, fsync=off, synchronous commits, max_connections 200), replicas started one after the other, each with its own data dir and the default pool of 10 connections. Every deployment stays up for the whole run; the idle ones only run their maintenance ticks.`,
        `${opts.connections} lanes per variant (--connections), one grpc-js channel and one outstanding SignSvid each, connected before the window (no handshake in the figures); lane i talks to replica i mod R, so with 3 replicas each gets a third of the lanes. The load generator is this process, on the same machine.`,
        'renewal (mTLS): each lane is one workload (first SVID from a join token) renewing with its current SVID as the client certificate. join token: each SignSvid spends a fresh single-use token for its own workload ID, made through the first replica\'s admin.sock before the window (sized from a warm-up; with PostgreSQL any replica spends it from the shared table).',
        `CSRs come from a pool of ${CSR_POOL} made before the run. CPU = utime+stime from /proc (${clk} ticks/s) over the window ÷ SVIDs issued: "control plane" = every replica of the deployment summed; "PostgreSQL" = the postmaster and all its processes, plus the CPU of backends that exited in the window (the postmaster's reaped-children time, /proc fields 16–17; pools close idle connections after 30 s), backends of the idle deployments' replicas included (a small background); total = both. machineBusy = busy share of all CPUs in the window.`,
        `On a machine with ${machine['cpuCount']} CPUs the replicas, PostgreSQL and the load generator share the same cores: more replicas cannot add capacity here, so compare CPU per SVID rather than SVIDs/s across deployments; the SVIDs/s of PostgreSQL ×3 shows the cost of the shared database, not the scaling of a real multi-node deployment.`,
        ...f.notes,
      ],
      options: { lanes: opts.connections, csrPool: CSR_POOL },
    });
  } finally {
    for (const d of fixture?.deployments.values() ?? []) for (const c of [...d.tlsClients, ...d.mtlsClients]) c.close();
    await group.stopAll();
    await held.postgres?.stop();
  }
}

export const issuanceStoreScenario: BenchScenario = {
  name: 'issuance-store',
  summary: 'SVIDs/s, p50/p99 and CPU per SVID (control plane + PostgreSQL): SQLite ×1 vs PostgreSQL ×1 and ×3 replicas, renewal and join tokens',
  defaults: { durationMs: 3_000, warmupMs: 500, rounds: 5, connections: 12 },
  run,
};

// Standalone: `node dist/bench/scenarios/issuance-store.js` prints the result JSON on stdout, progress on stderr.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runStandalone(issuanceStoreScenario, { durationMs: 3_000, warmupMs: 500, rounds: 3, connections: 12 });
}
