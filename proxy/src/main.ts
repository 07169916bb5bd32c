// The proxy's composition root: builds the identity source, policy source, telemetry, admin listener, discovery,
// the Workload API and the fleet report from a validated config, around the plane that runs the listeners (this
// process, or N listener workers with `workers: N`), and owns start-up order (every port bound before the identity
// source attests) and graceful drain.
import { describeError } from '../../common/errors.js';
import { UndoStack } from '../../common/undo-stack.js';
import { heapTrimWanted, startProcessHeapTrim } from '../../shared-io/process-heap-trim.js';
import { realTimers } from '../../shared-io/timers.js';
import { startAdminServer } from './admin/admin-server.js';
import { certsReport } from './admin/certs-report.js';
import { Latch, Readiness } from '../../common/readiness.js';
import { probeServedLeaf } from './admin/served-check.js';
import { ServedVerifier } from './admin/served-verifier.js';
import { openPolicySource } from './authz/open-policy-source.js';
import { PolicyHolder } from './authz/policy-holder.js';
import type { ProxyConfig } from './config/proxy-config.js';
import { redactedConfig } from './config/redact-config.js';
import { IdentityStore } from './identity/identity-store.js';
import { JwtBundleHolder } from './identity/jwt-bundle-holder.js';
import type { IdentitySource } from './identity/identity-source.js';
import { openIdentitySource } from './identity/open-identity-source.js';
import type { ListenerPlane } from './listeners/listener-plane.js';
import { LocalPlane } from './listeners/local-plane.js';
import type { ProxyRuntime, RunningProxy } from './proxy-runtime.js';
import type { MeshDiscovery } from './routing/mesh-discovery.js';
import { createProxyRegistry, ProxyMetrics } from './telemetry/metrics.js';
import { DenyListHolder } from './tls/deny-list-holder.js';

/** Between telling the registry this proxy drains and closing its listeners: callers learn of it and pick others. */
const DEREGISTER_PROPAGATION_MS = 500;

export async function startProxy(config: ProxyConfig, rt: ProxyRuntime): Promise<RunningProxy> {
  const { clock, log } = rt;
  const timers = rt.timers ?? realTimers;
  const nowMs = () => clock.nowMs();
  const registry = createProxyRegistry();
  const metrics = new ProxyMetrics(registry, { build: rt.build });
  const identity = new IdentityStore(clock);
  const policies = new PolicyHolder(config.authorization.defaultAction);
  // Bans come only over Config/Watch: a files-identity proxy keeps the empty list.
  const denyList = new DenyListHolder();
  const jwtBundles = new JwtBundleHolder();
  const held = { identity, policies, denyList };
  // workers > 1: this process is the primary (identity, admin) and the listeners run in worker processes.
  const plane: ListenerPlane =
    config.workers > 1
      ? new (await import('./workers/worker-plane.js')).WorkerPlane({ config, held, registry, workerCommand: rt.workerCommand, env: rt.env, timers, nowMs, log })
      : new LocalPlane({ config, held: { ...held, metrics }, registry, clock, exchangeClock: rt.exchangeClock, timers, log, env: rt.env });
  const served = new ServedVerifier({ identity, target: () => plane.servedTarget(), metrics, log, nowMs, timers });
  const draining = new Latch();
  identity.subscribe((s) => metrics.svidExpiry(s.notAfterMs));

  // Made once identity is in (below); the readiness check and shutdown read it.
  let mesh: MeshDiscovery | undefined;
  // Opened after the ports and the admin listener are bound (below); until then the identity is "starting".
  let source: IdentitySource | undefined;
  const readiness = new Readiness()
    .add('draining', () => (draining.isSet ? 'draining' : undefined))
    .add('identity', () => (source ? source.notReadyReason() : 'identity source starting'))
    .add('policies', () => (policies.loaded ? undefined : 'waiting for the first policy snapshot'))
    .add(plane.readinessName, () => plane.notReadyReason())
    .add('served-serial', () => served.notReadyReason())
    .add('discovery', () => (mesh?.watch && mesh.directory.version === undefined ? 'waiting for the first endpoints from discovery' : undefined));

  // A failing step closes what the steps before it opened (newest first) and rethrows: a refused start leaves no
  // port bound and no stream open.
  const undo = new UndoStack();
  undo.push(() => plane.close());
  const { admin, started, stopAll, workloadApi } = await undo.guard(async () => {
    // Every port is bound before the identity source starts: a port in use fails the start before a join token is
    // spent (audit 52a F3). The listeners' sockets reset every connection until the listeners serve on them.
    await plane.reserve();
    const admin = await startAdminServer({
      listen: config.admin.listen,
      registry: plane.metrics,
      // Refusals happen on this process's admin listener, never in a worker.
      onRefused: (reason) => metrics.rejected('admin', reason),
      ...{ clock, timers },
      readiness: () => readiness.state(),
      certs: () => certsReport(identity.current, plane.servedTarget(), { nextRenewalMs: source?.nextRenewalMs, clockOffsetMs: source?.clockOffsetMs, lastServedCheck: served.last }),
      endpoints: () => plane.endpoints(),
      config: async () => ({ ...redactedConfig(config), policiesVersion: policies.current.version, denyList: { spiffeIds: [...denyList.current.spiffeIds], serials: [...denyList.current.serials] }, ...(await plane.describe()) }),
      onError: (err, path) => log.error({ path, err: describeError(err) }, 'admin provider failed'),
      appProbes: config.admin.appProbes,
    });
    undo.push(() => admin.close());

    // Attestation starts here, once nothing else of the start can fail on a port.
    source = await openIdentitySource(config, { store: identity, policies, denyList, jwtBundles, metrics, registry, log, clock, deadlineClock: rt.deadlineClock, timers });
    const policySource = openPolicySource(config.authorization, source, policies, metrics, log);
    const stoppables: { stop(): void }[] = policySource ? [source, policySource] : [source];
    const stopAll = () => {
      for (const s of stoppables) s.stop();
    };
    undo.push(stopAll);

    // ---- listeners, once identity and policy are in place (no mTLS is served before)
    await source.ready();
    // Discovery (endpoints of the services outbound listeners route to) and self-registration of inbound listeners.
    const routed = config.outbound.some((c) => c.route.kind !== 'static') || config.inbound.some((c) => c.registration);
    mesh =
      routed && source.discovery
        ? (await import('./routing/mesh-discovery.js')).createMeshDiscovery({ inbound: config.inbound, outbound: config.outbound, ...source.discovery, identity, boundPort: (name) => plane.inboundPort(name), ready: () => readiness.state().ready, metrics, log, timers })
        : undefined;
    undo.push(() => mesh?.stop());
    const started = await plane.start(mesh?.directory);
    undo.push(() => plane.drain());
    const mintJwtSvid = source.mintJwtSvid;
    const jwt = mintJwtSvid
      ? { mint: mintJwtSvid, bundles: jwtBundles, ownId: () => identity.current?.id.toString(), nowMs, revoked: (id: string) => denyList.current.spiffeIds.has(id), ...(source.ownBan ? { ownBan: source.ownBan } : {}), onCall: metrics.jwtCall.bind(metrics) }
      : undefined;
    const workloadApi = config.workloadApi
      ? await (await import('./workload-api/workload-api-server.js')).WorkloadApiServer.start({ socketPath: config.workloadApi.socket, timers, nowMs, feed: (await import('./workload-api/identity-feed.js')).identityFeed(identity), ...(jwt ? { jwt } : {}), onEvent: (e) => metrics.workloadCall(e.method, e.outcome), onRejected: (reason) => metrics.rejected('workload_api', reason) })
      : undefined;
    undo.push(() => workloadApi?.close());
    served.start();
    stoppables.push(served);
    // The fleet view: what each inbound listener serves and the denials, reported to the control plane (if any).
    const inbound = () => config.inbound.map((c) => ({ name: c.name, host: c.listen.host, port: plane.inboundPort(c.name) }));
    const fleet = source.report ? await import('./telemetry/fleet-reporter.js') : undefined;
    const reporter = source.report && fleet ? new fleet.FleetReporter({ send: source.report, identity, listeners: inbound, probe: probeServedLeaf, denials: plane.denials, instance: fleet.processInstance(), nowMs, timers, log, onResult: fleet.fleetReportCounter(registry) }) : undefined;
    reporter?.start();
    if (reporter) stoppables.push(reporter);
    mesh?.start();
    // Last: start-up's garbage is given back before the caller says ready (docs/operations.md, "Memory at idle").
    const heapTrim = heapTrimWanted(rt.env) ? await startProcessHeapTrim({ registry, timers, nowMs, log }) : undefined;
    if (heapTrim) stoppables.push(heapTrim);
    return { admin, started, stopAll, workloadApi };
  });

  return {
    admin: admin.address,
    listeners: started,
    readiness: () => readiness.state(),
    async shutdown() {
      if (draining.isSet) return;
      draining.set();
      // The drain closes the listeners the served-serial check dials: a renewal from here on is not checked.
      served.stop();
      // Callers stop picking this proxy's endpoints before its listeners stop accepting.
      if (mesh?.registration) {
        await mesh.setDraining();
        await new Promise<void>((resolve) => timers.setTimeout(resolve, DEREGISTER_PROPAGATION_MS));
      }
      await plane.drain();
      await mesh?.stop();
      stopAll();
      await workloadApi?.close();
      await plane.close();
      await admin.close();
    },
  };
}
