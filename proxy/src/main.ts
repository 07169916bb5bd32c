// The proxy's composition root: builds the identity source, policy source, telemetry, admin listener and the
// inbound/outbound/edge listeners from a validated config, and owns start-up order and graceful drain.
import { describeError } from '../../common/errors.js';
import { startProcessHeapTrim } from '../../shared-io/process-heap-trim.js';
import { realTimers } from '../../shared-io/timers.js';
import { startAdminServer } from './admin/admin-server.js';
import { certsReport } from './admin/certs-report.js';
import { Latch, Readiness } from './admin/readiness.js';
import { probeServedLeaf } from './admin/served-check.js';
import { ServedVerifier } from './admin/served-verifier.js';
import { openPolicySource } from './authz/open-policy-source.js';
import { PolicyHolder } from './authz/policy-holder.js';
import type { ProxyConfig } from './config/proxy-config.js';
import { redactedConfig } from './config/redact-config.js';
import { IdentityStore } from './identity/identity-store.js';
import { JwtBundleHolder } from './identity/jwt-bundle-holder.js';
import { openIdentitySource } from './identity/open-identity-source.js';
import { listenerDeps } from './listeners/listener-deps.js';
import { ListenerGroup } from './listeners/listener-group.js';
import { makeListeners } from './listeners/make-listeners.js';
import type { ProxyRuntime, RunningProxy } from './proxy-runtime.js';
import type { MeshDiscovery } from './routing/mesh-discovery.js';
import { accessLogReports, createAccessLog } from './telemetry/access-log.js';
import { countAccessLogDrops } from './telemetry/access-log-metrics.js';
import { createProxyRegistry, ProxyMetrics } from './telemetry/metrics.js';
import { startTracing } from './telemetry/start-tracing.js';
import { DenyListHolder } from './tls/deny-list-holder.js';
import { TicketKeys } from './tls/tls-contexts.js';

/** Between telling the registry this proxy drains and closing its listeners: callers learn of it and pick others. */
const DEREGISTER_PROPAGATION_MS = 500;

export async function startProxy(config: ProxyConfig, rt: ProxyRuntime): Promise<RunningProxy> {
  // workers > 1: this process is the primary (identity, admin) and the listeners run in worker processes.
  if (config.workers > 1) return (await import('./workers/primary-main.js')).startPrimary(config, rt);
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
  const accessLog = createAccessLog({ destination: config.telemetry.accessLog, clock, ...accessLogReports(log) });
  countAccessLogDrops(registry, accessLog);
  const listeners = new ListenerGroup(timers);
  const served = new ServedVerifier({ identity, target: () => listeners.servedTarget(), metrics, log, nowMs, timers });
  const listenersUp = new Latch();
  const draining = new Latch();
  identity.subscribe((s) => metrics.svidExpiry(s.notAfterMs));

  const source = await openIdentitySource(config, { store: identity, policies, denyList, jwtBundles, metrics, registry, log, clock });
  const policySource = openPolicySource(config.authorization, source, policies, metrics, log);
  const stoppables: { stop(): void }[] = policySource ? [source, policySource] : [source];

  // Made once identity is in (below); the readiness check and shutdown read it.
  let mesh: MeshDiscovery | undefined;
  const readiness = new Readiness()
    .add('draining', () => (draining.isSet ? 'draining' : undefined))
    .add('identity', () => source.notReadyReason())
    .add('policies', () => (policies.loaded ? undefined : 'waiting for the first policy snapshot'))
    .add('listeners', () => (listenersUp.isSet ? undefined : 'listeners starting'))
    .add('served-serial', () => served.notReadyReason())
    .add('discovery', () => (mesh?.watch && mesh.directory.version === undefined ? 'waiting for the first endpoints from discovery' : undefined));
  const stopAll = () => {
    for (const s of stoppables) s.stop();
  };
  const admin = await startAdminServer({
    listen: config.admin.listen,
    registry,
    onRefused: (reason) => metrics.rejected('admin', reason),
    clock,
    readiness: () => readiness.state(),
    certs: () => certsReport(identity.current, listeners.servedTarget(), { nextRenewalMs: source.nextRenewalMs, lastServedCheck: served.last }),
    endpoints: () => listeners.endpoints(),
    config: () => ({ ...redactedConfig(config), policiesVersion: policies.current.version, denyList: { spiffeIds: [...denyList.current.spiffeIds], serials: [...denyList.current.serials] }, listeners: listeners.describe() }),
    onError: (err, path) => log.error({ path, err: describeError(err) }, 'admin provider failed'),
    appProbes: config.admin.appProbes,
  }).catch((e: unknown) => {
    stopAll();
    throw e;
  });

  // ---- listeners, once identity and policy are in place (no mTLS is served before)
  await source.ready();
  const tracer = await startTracing(config.telemetry.tracing, rt.env, identity.current!.id, log, registry);
  const ticketKeys = new TicketKeys();
  stoppables.push(listeners.rotateTicketKeysEvery(ticketKeys, config.limits.ticketKeyRotationMs));
  // Discovery (endpoints of the services outbound listeners route to) and self-registration of inbound listeners.
  const routed = config.outbound.some((c) => c.route.kind !== 'static') || config.inbound.some((c) => c.registration);
  mesh =
    routed && source.discovery
      ? (await import('./routing/mesh-discovery.js')).createMeshDiscovery({ inbound: config.inbound, outbound: config.outbound, ...source.discovery, identity, boundPort: (name) => listeners.portOf('inbound', name), ready: () => readiness.state().ready, metrics, log, timers })
      : undefined;
  const deps = await listenerDeps(config, { identity, policies, denyList, metrics, accessLog, tracer, ticketKeys, nowMs, timers, log }, mesh ? { directory: mesh.directory, registry, timers } : undefined);
  const made = await makeListeners(config, deps);
  const started = await listeners.start(made).catch(async (e: unknown) => {
      stopAll();
      await admin.close();
      throw e;
    });
  const mintJwtSvid = source.mintJwtSvid;
  const jwt = mintJwtSvid
    ? { mint: mintJwtSvid, bundles: jwtBundles, ownId: () => identity.current?.id.toString(), nowMs, revoked: (id: string) => denyList.current.spiffeIds.has(id), onCall: metrics.jwtCall.bind(metrics) }
    : undefined;
  const workloadApi = config.workloadApi
    ? await (await import('./workload-api/workload-api-server.js')).WorkloadApiServer.start({ socketPath: config.workloadApi.socket, feed: (await import('./workload-api/identity-feed.js')).identityFeed(identity), ...(jwt ? { jwt } : {}), onEvent: (e) => metrics.workloadCall(e.method, e.outcome) })
    : undefined;
  listenersUp.set();
  served.start();
  stoppables.push(served);
  // The fleet view: what each inbound listener serves and the denials, reported to the control plane (if any).
  const inbound = () => config.inbound.map((c) => ({ name: c.name, host: c.listen.host, port: listeners.portOf('inbound', c.name) }));
  const fleet = source.report ? await import('./telemetry/fleet-reporter.js') : undefined;
  const reporter = source.report && fleet ? new fleet.FleetReporter({ send: source.report, identity, listeners: inbound, probe: probeServedLeaf, denials: deps.denials, instance: fleet.processInstance(), nowMs, timers, log, onResult: fleet.fleetReportCounter(registry) }) : undefined;
  reporter?.start();
  if (reporter) stoppables.push(reporter);
  mesh?.start();
  // Last: start-up's garbage is given back before the caller says ready (docs/operations.md, "Memory at idle").
  const heapTrim = await startProcessHeapTrim({ registry, timers, nowMs, log });
  if (heapTrim) stoppables.push(heapTrim);

  return {
    admin: admin.address,
    listeners: started,
    readiness: () => readiness.state(),
    async shutdown() {
      if (draining.isSet) return;
      draining.set();
      // Callers stop picking this proxy's endpoints before its listeners stop accepting.
      if (mesh?.registration) {
        await mesh.setDraining();
        await new Promise<void>((resolve) => timers.setTimeout(resolve, DEREGISTER_PROPAGATION_MS));
      }
      await listeners.drainAndClose(config.limits.drainTimeoutMs);
      await mesh?.stop();
      stopAll();
      await workloadApi?.close();
      await tracer?.shutdown();
      await accessLog.close();
      await admin.close();
    },
  };
}
