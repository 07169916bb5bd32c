// The composition root of a proxy with `workers: N` (N > 1, docs/workers.md): this primary owns the identity
// source (one attestation, one SVID), the policy and deny-list sources, discovery, the Workload API, the admin
// listener and readiness; N worker processes run the listeners on shared ports and get every snapshot over IPC.
import { readFileSync } from 'node:fs';
import { describeError, TesseraError } from '../../../common/errors.js';
import { startProcessHeapTrim } from '../../../shared-io/process-heap-trim.js';
import { realTimers } from '../../../shared-io/timers.js';
import { startAdminServer } from '../admin/admin-server.js';
import { certsReport } from '../admin/certs-report.js';
import { Latch, Readiness } from '../admin/readiness.js';
import { probeServedLeaf } from '../admin/served-check.js';
import { ServedVerifier } from '../admin/served-verifier.js';
import { openPolicySource } from '../authz/open-policy-source.js';
import { PolicyHolder } from '../authz/policy-holder.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import { redactedConfig } from '../config/redact-config.js';
import { IdentityStore } from '../identity/identity-store.js';
import { JwtBundleHolder } from '../identity/jwt-bundle-holder.js';
import { openIdentitySource } from '../identity/open-identity-source.js';
import type { StartedListener } from '../listeners/listener-group.js';
import type { ProxyRuntime, RunningProxy } from '../proxy-runtime.js';
import type { MeshDiscovery } from '../routing/mesh-discovery.js';
import { createProxyRegistry, ProxyMetrics } from '../telemetry/metrics.js';
import { DenyListHolder } from '../tls/deny-list-holder.js';
import { CounterCarry } from './counter-carry.js';
import { AggregatingRegistry, aggregateMetrics } from './metrics-aggregate.js';
import { encodeDenyList, encodeDirectory, encodeIdentity, encodePolicies } from './worker-messages.js';
import { WorkerPool } from './worker-pool.js';
import { mergeDenials, mergeEndpoints, mergeListeners, type SlotStats, snapshotRefusalCounter, workerSlotCounter } from './worker-views.js';

const DEREGISTER_PROPAGATION_MS = 500;
/** Beyond the listeners' drain deadline, before a worker that has not exited is killed. */
const DRAIN_MARGIN_MS = 5_000;
/** How often the denials of the workers are gathered for the fleet report. */
const DENIALS_REFRESH_MS = 10_000;

export async function startPrimary(config: ProxyConfig, rt: ProxyRuntime): Promise<RunningProxy> {
  const { clock, log, workerCommand } = rt;
  if (!workerCommand) throw new TesseraError('TESSERA_ERR_PROXY_START_FAILED', 'workers > 1 needs the command that starts a listener worker (given by `tessera proxy`)');
  const timers = rt.timers ?? realTimers;
  const nowMs = () => clock.nowMs();
  const registry = createProxyRegistry();
  const metrics = new ProxyMetrics(registry, { build: rt.build });
  const identity = new IdentityStore(clock);
  const policies = new PolicyHolder(config.authorization.defaultAction);
  const denyList = new DenyListHolder();
  const jwtBundles = new JwtBundleHolder();
  const draining = new Latch();
  const countRefusal = snapshotRefusalCounter(registry);
  const pool = new WorkerPool({
    count: config.workers,
    command: workerCommand.command,
    args: workerCommand.args,
    env: rt.env,
    configFile: config.file,
    // The listener sections the workers run, read once here so that every worker and restart runs the same ones.
    configText: readFileSync(config.file, 'utf8'),
    drainGraceMs: config.limits.drainTimeoutMs + DRAIN_MARGIN_MS,
    timers,
    nowMs,
    log,
    onRestart: workerSlotCounter(registry, config.workers, 'tessera_worker_restarts_total', 'Listener workers that exited unasked and were restarted by the primary, by worker slot.'),
    onRestartFailed: workerSlotCounter(registry, config.workers, 'tessera_worker_restart_failures_total', 'Restart attempts of a listener worker that failed before it listened (retried after the backoff), by worker slot.'),
    onHung: workerSlotCounter(registry, config.workers, 'tessera_worker_hangs_total', 'Listener workers killed (then restarted) because they stopped answering the primary, by worker slot.'),
    onRefused: (_slot, part) => countRefusal(part),
  });
  identity.subscribe((s) => {
    metrics.svidExpiry(s.notAfterMs);
    pool.publish({ identity: encodeIdentity(s) });
  });
  policies.subscribe(() => pool.publish({ policies: encodePolicies(policies)! }));
  denyList.subscribe((list) => pool.publish({ denyList: encodeDenyList(list) }));

  const source = await openIdentitySource(config, { store: identity, policies, denyList, jwtBundles, metrics, registry, log, clock });
  const policySource = openPolicySource(config.authorization, source, policies, metrics, log);
  const stoppables: { stop(): void }[] = policySource ? [source, policySource] : [source];

  const servedTarget = () => {
    const first = config.inbound[0];
    const port = first && pool.ports[`inbound/${first.name}`];
    return first && port ? { host: first.listen.host, port } : undefined;
  };
  const served = new ServedVerifier({ identity, target: servedTarget, metrics, log, nowMs, timers });
  let mesh: MeshDiscovery | undefined;
  const readiness = new Readiness()
    .add('draining', () => (draining.isSet ? 'draining' : undefined))
    .add('identity', () => source.notReadyReason())
    .add('policies', () => (policies.loaded ? undefined : 'waiting for the first policy snapshot'))
    .add('workers', () => pool.notReadyReason())
    .add('served-serial', () => served.notReadyReason())
    .add('discovery', () => (mesh?.watch && mesh.directory.version === undefined ? 'waiting for the first endpoints from discovery' : undefined));
  const stopAll = () => {
    for (const s of stoppables) s.stop();
  };
  const stats = async (): Promise<SlotStats[]> => pool.stats();
  // What each worker slot last counted (and its earlier processes): the summed counters never go backwards.
  const carry = new CounterCarry();
  const render = async () => {
    const [own, all] = await Promise.all([registry.getMetricsAsJSON(), stats()]);
    return aggregateMetrics(own, all.map((s) => ({ slot: s.slot, pid: s.stats?.pid, metrics: s.stats?.metrics })), carry).metrics();
  };
  const admin = await startAdminServer({
    listen: config.admin.listen,
    registry: new AggregatingRegistry(render),
    // The primary's own counter: refusals happen on its admin listener, not in a worker.
    onRefused: (reason) => metrics.rejected('admin', reason),
    clock,
    readiness: () => readiness.state(),
    certs: () => certsReport(identity.current, servedTarget(), { nextRenewalMs: source.nextRenewalMs, lastServedCheck: served.last }),
    endpoints: async () => mergeEndpoints(await stats()),
    config: async () => ({ ...redactedConfig(config), policiesVersion: policies.current.version, denyList: encodeDenyList(denyList.current), listeners: mergeListeners(await stats()), workers: pool.describe() }),
    onError: (err, path) => log.error({ path, err: describeError(err) }, 'admin provider failed'),
    appProbes: config.admin.appProbes,
  }).catch((e: unknown) => {
    stopAll();
    throw e;
  });

  // ---- workers, once identity and policy are in place (no mTLS is served before)
  await source.ready();
  const routed = config.outbound.some((c) => c.route.kind !== 'static') || config.inbound.some((c) => c.registration);
  mesh =
    routed && source.discovery
      ? (await import('../routing/mesh-discovery.js')).createMeshDiscovery({ inbound: config.inbound, outbound: config.outbound, ...source.discovery, identity, boundPort: (name) => pool.ports[`inbound/${name}`], ready: () => readiness.state().ready, metrics, log, timers })
      : undefined;
  const directory = mesh?.directory;
  // Every change of any service is sent as the directory's whole state, at most once per turn.
  let directoryQueued = false;
  directory?.subscribeAll(() => {
    if (directoryQueued) return;
    directoryQueued = true;
    queueMicrotask(() => {
      directoryQueued = false;
      const w = encodeDirectory(directory);
      if (w) pool.publish({ directory: w });
    });
  });
  const directoryNow = directory ? encodeDirectory(directory) : undefined;
  const policiesNow = encodePolicies(policies);
  await pool
    .start({ identity: encodeIdentity(identity.current!), denyList: encodeDenyList(denyList.current), ...(policiesNow ? { policies: policiesNow } : {}), ...(directoryNow ? { directory: directoryNow } : {}) })
    .catch(async (e: unknown) => {
      await pool.drain();
      stopAll();
      await admin.close();
      throw e;
    });
  const mintJwtSvid = source.mintJwtSvid;
  const jwt = mintJwtSvid ? { mint: mintJwtSvid, bundles: jwtBundles, ownId: () => identity.current?.id.toString(), nowMs, revoked: (id: string) => denyList.current.spiffeIds.has(id), onCall: metrics.jwtCall.bind(metrics) } : undefined;
  const workloadApi = config.workloadApi
    ? await (await import('../workload-api/workload-api-server.js')).WorkloadApiServer.start({ socketPath: config.workloadApi.socket, feed: (await import('../workload-api/identity-feed.js')).identityFeed(identity), ...(jwt ? { jwt } : {}), onEvent: (e) => metrics.workloadCall(e.method, e.outcome) })
    : undefined;
  served.start();
  stoppables.push(served);
  const inbound = () => config.inbound.map((c) => ({ name: c.name, host: c.listen.host, port: pool.ports[`inbound/${c.name}`] }));
  const fleet = source.report ? await import('../telemetry/fleet-reporter.js') : undefined;
  if (source.report && fleet) {
    let denials = mergeDenials([]);
    const refresh = timers.setInterval(() => void stats().then((all) => (denials = mergeDenials(all))), DENIALS_REFRESH_MS);
    stoppables.push({ stop: () => timers.clearInterval(refresh) });
    const reporter = new fleet.FleetReporter({ send: source.report, identity, listeners: inbound, probe: probeServedLeaf, denials: { rows: () => denials }, instance: fleet.processInstance(), nowMs, timers, log, onResult: fleet.fleetReportCounter(registry) });
    reporter.start();
    stoppables.push(reporter);
  }
  mesh?.start();
  const heapTrim = await startProcessHeapTrim({ registry, timers, nowMs, log });
  if (heapTrim) stoppables.push(heapTrim);

  const listeners: StartedListener[] = (['inbound', 'outbound', 'edge'] as const).flatMap((kind) => config[kind].map((c) => ({ kind, name: c.name, port: pool.ports[`${kind}/${c.name}`] ?? c.listen.port })));
  return {
    admin: admin.address,
    listeners,
    readiness: () => readiness.state(),
    async shutdown() {
      if (draining.isSet) return;
      draining.set();
      if (mesh?.registration) {
        await mesh.setDraining();
        await new Promise<void>((resolve) => timers.setTimeout(resolve, DEREGISTER_PROPAGATION_MS));
      }
      await pool.drain();
      await mesh?.stop();
      stopAll();
      await workloadApi?.close();
      await admin.close();
    },
  };
}
