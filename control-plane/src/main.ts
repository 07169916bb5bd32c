// The control plane's composition root: data dir, store, CA, attestors and issuance, the service registry and its
// sources, the gRPC services (Identity, Config, Discovery), the admin doors, the optional injector webhook and the
// maintenance scheduler. Everything is created and wired here and nowhere else; what each part does lives in its
// own module. close() drains within a deadline.
import { Registry } from 'prom-client';
import { describeError } from '../../common/errors.js';
import { UndoStack } from '../../common/undo-stack.js';
import { PolicyDirSource } from '../../shared-io/policy-dir-source.js';
import { heapTrimWanted, startProcessHeapTrim } from '../../shared-io/process-heap-trim.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import { realTimers } from '../../shared-io/timers.js';
import { adminSocketPath } from './admin/admin-client.js';
import { startAdminSurface } from './admin/admin-surface.js';
import { certsView, updateCaGauges } from './admin/certs-view.js';
import { configHubReports, federationReports, identityRejections, issuanceReports, jwtSvidReports, policyDirReports } from './admin/component-reports.js';
import { createMetrics } from './admin/metrics.js';
import { discoverySynced, ownSvidLive, PhasedReadiness, policySetLoaded, signingChainLive, storeWritable } from './admin/readiness.js';
import { budgetedRefusals } from './admin/refusal-audit.js';
import { ConfigHub } from './api/config-service.js';
import { GrpcServer } from './api/grpc-server.js';
import { guardedService, sharedResponseEncoding } from './api/guarded-service.js';
import { identityHandlers } from './api/identity-service.js';
import { jwtSvidHandlers } from './api/jwt-svid-service.js';
import { reportHandlers, reportMetrics } from './api/report-service.js';
import { createAttestors } from './attestation/attestors.js';
import { BundleFiles } from './ca/bundle-files.js';
import { openCa } from './ca/open-ca.js';
import { openJwtKeys } from './ca/open-jwt-keys.js';
import type { ControlPlaneConfig } from './config/cp-config.js';
import { redactedConfig } from './config/redact-config.js';
import { openDiscovery } from './discovery/open-discovery.js';
import { openFederation, startBundleEndpoint } from './federation/open-federation.js';
import { startEmbeddedInjector } from './injector/embedded-injector.js';
import { Issuer } from './issuance/issuer.js';
import { RateLimiter } from './issuance/rate-limiter.js';
import { Revocations } from './issuance/revocations.js';
import { openRsaKeyChecks } from './issuance/rsa-key-checks.js';
import { ServedIdentity } from './issuance/served-identity.js';
import { warnOnCaDirChange } from './lifecycle/ca-dir-watch.js';
import { claimDataDir } from './lifecycle/claim-data-dir.js';
import { warnOnConfigEdit } from './lifecycle/config-file-watch.js';
import type { ControlPlaneDeps, ControlPlaneHandle } from './lifecycle/control-plane-handle.js';
import { announcer, followChanges } from './lifecycle/follow-changes.js';
import { openStore } from './lifecycle/open-store.js';
import { Relay } from './lifecycle/relay.js';
import { shutdown } from './lifecycle/shutdown.js';
import { controlPlaneMaintenance } from './maintenance/maintenance.js';
import { BreakGlass } from './policy/break-glass.js';

export type { ControlPlaneDeps, ControlPlaneHandle } from './lifecycle/control-plane-handle.js';
export type { ControlPlaneLogger } from './logger.js';

export async function startControlPlane(config: ControlPlaneConfig, deps: ControlPlaneDeps): Promise<ControlPlaneHandle> {
  const { clock, log } = deps;
  const timers = deps.timers ?? realTimers;
  const { trustDomain: td, dataDir } = config;
  const socketPath = adminSocketPath(dataDir);
  // Two control planes on one data dir would fork the CA: the dir is locked before anything in it is touched.
  const lock = deps.claimed ?? (await claimDataDir(dataDir, socketPath, log, timers));
  const undo = new UndoStack();
  undo.push(() => lock.release());
  return undo.guard(async () => {
    const { store, leads, sharedCa, sharedJwt, replica, health } = await openStore(config, { clock, timers, log });
    undo.push(() => store.close());
    const registry = new Registry();
    const metrics = createMetrics(registry, deps.build);
    const { inventory, tokens, changes } = store, audit = budgetedRefusals(store.audit, clock, (event) => metrics.auditSuppressed.inc({ event }));
    const caChanged = new Relay(); // → bundle file, own SVID, gauges, config push (wired below)
    const configChanged = new Relay(); // → config push
    const jwtKeysChanged = new Relay(); // → bundle.spiffe.json, config push
    const announce = announcer(changes, (topic, e) => health.failures.report('announcing a change failed', e, { topic }, topic));
    const ca = await openCa({ dataDir, trustDomain: td, lifetimes: { ...config.ca, svidMaxTtlMs: config.svid.maxTtlMs }, rootMode: config.ca.root, clock, timers, inventory, audit, log, ...(deps.crashAt ? { crashAt: deps.crashAt } : {}), ...(sharedCa ? { shared: sharedCa } : {}), announce: announce('ca'), onChange: caChanged.fire, installs: metrics.caIntermediateInstalls, stop: deps.stop });
    const fixedCa = ca.persistence === 'fixed' ? ca : undefined, jwt = await openJwtKeys({ dataDir, clock, audit, log, ...(sharedJwt ? { shared: sharedJwt } : {}), ...(fixedCa ? { derivedFrom: { trustDomain: td.name, authorities: () => ca.current().authorities } } : {}), announce: announce('jwt'), onChange: jwtKeysChanged.fire });
    const bundleFiles = new BundleFiles({ dataDir, bundle: () => ca.current().bundle, jwtAuthorities: () => jwt.keys.published(), meta: store.meta, fixedCa, log });
    await bundleFiles.write();
    // A federated domain's bundle change is pushed like a CA change; RSA keys (CSRs', bundles') are judged on a thread.
    const rsaKeys = openRsaKeyChecks(timers, undo), federation = config.federation ? await openFederation(config.federation, { dataDir, ownBundle: () => ca.current().bundle, clock, timers, log, onChange: configChanged.fire, keyWeakness: rsaKeys.bundleKey, ...federationReports(metrics) }) : undefined;
    const attestors = await createAttestors(config, { clock, timers, log, tokens, nonces: store.nonces, bundle: () => ca.current().bundle });
    undo.push(() => attestors.stop());
    const revocations = await Revocations.open({ store: store.revocations, tokens, inventory, audit, trustDomain: td, clock, onChange: configChanged.fire, announce: announce('revocations'), onReloadFailed: (e) => health.failures.report('reloading the bans failed', e) });
    const limiter = new RateLimiter(config.svid.rateLimit, clock);
    const admit = (id: string, serial: string) => revocations.check(id, serial);
    const { joinTokens, kubernetes, svids } = attestors;
    const issuer = new Issuer({ trustDomain: td, ca: () => ca.current(), svid: config.svid, ...(joinTokens ? { joinTokens } : {}), ...(kubernetes ? { kubernetes } : {}), ...(attestors.tpm ? { tpm: attestors.tpm } : {}), svids, revocations, limiter, inventory, audit, clock, keyWeakness: rsaKeys.csrKey, metrics: issuanceReports(metrics, deps.preciseClock) });
    const served = await ServedIdentity.open(issuer, td, config.svid.ttlMs, () => ca.current(), clock);
    const breakGlass = await BreakGlass.open({ store: store.grants, audit, clock, onChange: configChanged.fire, announce: announce('grants') });
    const dir = config.policiesDir;
    const policies = dir ? new PolicyDirSource({ dir, ...policyDirReports(dir, metrics, log, configChanged.fire) }) : undefined;
    const { handshakeTimeoutMs, headersTimeoutMs, maxConnections, maxRequestBytes, maxStreamsPerId, streamOpensPerSecond } = config.limits;
    // What grpc-js buffers of one message; a larger one gets our coded answer too (shared-io/read-refusal.ts).
    const maxReceiveBytes = maxRequestBytes * 4;
    const onTlsFailure = (reason: string) => metrics.tlsFailures.inc({ reason });
    const server = new GrpcServer({ listen: config.listen, identity: served.credentials(), handshakeTimeoutMs, headersTimeoutMs, maxConnections, maxReceiveBytes, onTlsFailure, onRejected: (reason) => metrics.grpcRejected.inc({ reason }), timers, nowMs: () => clock.nowMs() });
    const peerChain = (call: { getPeer(): string }) => server.chainOf(call);
    const services = loadTesseraServices();
    const hub = await ConfigHub.open({
      // Federated domains' bundles and JWT keys ride along, each under its own trust domain only.
      inputs: { bundles: () => [ca.current().bundle, ...(federation?.bundles() ?? [])], jwtAuthorities: () => new Map([...(federation?.jwtAuthorities() ?? []), [td.name, jwt.keys.published()]]), policies: () => policies?.policies ?? [], grants: () => breakGlass.active(), denyList: () => revocations.denyList() },
      svids,
      admit,
      ...{ peerChain, clock, maxStreamsPerId, streamOpensPerSecond, encode: services.config.service['Watch']!.responseSerialize },
      nextVersion: () => store.meta.increment('config.snapshot_version'),
      ...configHubReports(metrics, audit, clock, log),
    });
    configChanged.connect(() => void hub.publish());
    jwtKeysChanged.connect(() => {
      void bundleFiles.rewrite();
      void hub.publish();
    });
    policies?.start();
    undo.push(() => policies?.stop());
    // Read once at start: an edit of the file, or of a read-only CA dir (a Secret), is logged as needing a restart.
    const configWatch = warnOnConfigEdit(config, { log, timers, onChange: (result) => metrics.configFileChanges.inc({ result }) });
    const caWatch = warnOnCaDirChange(ca.persistence, { dataDir, trustDomain: td, clock, log, timers });
    undo.push(() => [configWatch.close(), caWatch?.close()]);

    const onRejected = identityRejections(metrics, audit, clock);
    const jwtSigner = { signingKey: () => jwt.keys.active(), take: (key: string) => limiter.take(key), lineageOf: (serial: string) => issuer.lineageOf(serial), ...jwtSvidReports(metrics) };
    const identityService = { ...identityHandlers({ issuer, peerChain, onRejected, jwtAuthorities: () => jwt.keys.published(), deadlineClock: deps.deadlineClock }), ...jwtSvidHandlers({ trustDomain: td, svids, peerChain, admit, admitStored: (id, serial) => revocations.checkStored(id, serial), audit, clock, ...jwtSigner }) };
    server.addService(guardedService(services.identity.service, maxRequestBytes), identityService);
    const reportDeps = { svids, peerChain, admit, reports: store.reports, clock, log, replica: () => (store.kind === 'postgres' ? replica : server.address), ...reportMetrics(registry) };
    server.addService(sharedResponseEncoding(guardedService(services.config.service, maxRequestBytes)), { ...hub.handlers(), ...reportHandlers(reportDeps) });
    // Service registry (self-registrations persisted across restarts, endpoint sources) and the Discovery service.
    const discovery = await openDiscovery(config.discovery, { trustDomain: td, replica, clock, timers, log, metrics, audit, meta: store.meta, registrations: store.registrations, announce: announce('registrations'), svids, admit, peerChain, maxStreamsPerId, streamOpensPerSecond });
    undo.push(() => discovery.stop());
    server.addService(guardedService(services.discovery.service, maxRequestBytes), discovery.handlers);
    await server.start();
    undo.push(() => server.stop(0));

    const endpointCfg = config.federation?.bundleEndpoint;
    const bundleEndpoint = endpointCfg ? await startBundleEndpoint(endpointCfg, { dataDir, ownIdentity: () => served.credentials(), log, clock, limits: config.limits, onRefused: (reason) => metrics.bundleEndpointRefused.inc({ reason }) }) : undefined;
    undo.push(() => bundleEndpoint?.endpoint.stop());
    // Self SVID and server credentials follow the CA: a new bundle or the self SVID's new signer (self-signer.ts) at once.
    const refreshSelf = (force: boolean) =>
      served.refresh(force, (identity) => {
        server.updateIdentity(identity);
        if (bundleEndpoint?.followsOwnSvid) bundleEndpoint.endpoint.updateIdentity(identity);
      });
    caChanged.connect(() => {
      void bundleFiles.rewrite();
      updateCaGauges(metrics, ca.current(), clock.nowMs());
      // Pushed once served: a proxy drops a removed root only when the gRPC port no longer presents an SVID of it.
      void refreshSelf(true).catch((e: unknown) => log.error({ err: describeError(e) }, 'applying a CA change failed')).finally(() => void hub.publish());
    });
    // Another replica's bans, grants or registrations (with one process: its own, already held).
    const unfollow = followChanges(changes, { revocations: () => revocations.reload(), grants: () => breakGlass.reload(), registrations: () => discovery.registry.reloadStored(), ca: () => ca.refresh(), jwt: () => jwt.refresh() }, (topic, e) => health.failures.report('reloading after a change failed', e, { topic }, topic));
    undo.push(unfollow);
    updateCaGauges(metrics, ca.current(), clock.nowMs());

    const readiness = new PhasedReadiness([signingChainLive(() => ca.current().signer, clock), ownSvidLive(() => served.svid, clock), storeWritable(health), ...(policies && dir ? [policySetLoaded(policies, dir)] : []), discoverySynced(discovery.notSyncedReason)]);
    const admin = await startAdminSurface({
      http: { listen: config.adminListen, clock, registry, notReadyReason: readiness.notReadyReason, certs: () => certsView(td, served.svid, ca.current()), config: () => ({ ...redactedConfig(config), trustDomain: td.name }), endpoints: () => discovery.registry.snapshot() },
      socketPath,
      routes: { trustDomain: td, ca, servedAuthority: () => served.svid?.authorityId, tokens, joinTokensEnabled: config.attestors.joinToken.enabled, inventory, audit, breakGlass, revocations, ...(policies ? { policies } : {}), clock, installs: metrics.caIntermediateInstalls, ...(endpointCfg ? { federation: { profile: endpointCfg.certFile ? 'https_web' : 'https_spiffe' } } : {}) },
      dashboard: { trustDomain: td.name, clock, timers, ca: () => ({ ...ca.current(), servedAuthority: served.svid?.authorityId }), inventory, audit, reports: store.reports, grants: store.grants, revocations: store.revocations, policies: () => policies?.policies ?? [], changes, onError: (e, panels = []) => health.failures.report('the fleet view failed', e, { panels }, panels.join()), onScanned: (scan) => { metrics.dashboardBuilds.inc(); metrics.dashboardBuildSlices.inc(scan.slices); } },
    });
    undo.push(() => admin.stop());
    const injector = config.injector ? await startEmbeddedInjector(config.injector, () => ca.current().bundle.toPem(), { log, timers, clock, preciseClock: deps.preciseClock }) : undefined;
    undo.push(() => injector?.close());

    const maintenance = controlPlaneMaintenance({
      tickMs: deps.tickMs ?? 1_000,
      ...{ clock, timers, breakGlass, server, metrics, limiter, tokens, reports: store.reports, leads, audit: store.audit, auditKeepMs: config.audit.keepMs, inventory, inventoryKeepMs: config.inventory.keepMs },
      onAuditPruned: (rows) => log.info({ rows, keepMs: config.audit.keepMs }, 'audit rows older than audit.keep deleted from the store'), onInventoryPruned: (rows) => log.info({ rows, keepMs: config.inventory.keepMs }, 'inventory rows expired more than inventory.keep ago deleted from the store'),
      hub: { tick: () => { hub.tick(); discovery.tick(); } },
      // JWT keys rotate on the CA's upkeep period: a key past its day is replaced, a retired one dropped after its overlap.
      ca: { maintain: () => ca.maintain().finally(() => jwt.maintain()) },
      renewSelf: () => refreshSelf(false),
      onFailure: (message, e) => health.failures.report(message, e),
    });
    maintenance.start();
    undo.push(() => maintenance.stop());
    federation?.start();
    undo.push(() => federation?.stop());
    const heapTrim = heapTrimWanted(deps.env ?? {}) ? await startProcessHeapTrim({ registry, timers, nowMs: () => clock.nowMs(), log }) : undefined; // last before ready, so no undo (operations.md, "Memory at idle")

    readiness.serving(); discovery.registry.serving(); // proxies can reconnect from now: the remembered registrations' window starts
    log.info({ trustDomain: td.name, grpc: server.address, admin: admin.address, dataDir, ...(bundleEndpoint ? { bundleEndpoint: bundleEndpoint.endpoint.address } : {}) }, 'control plane ready');
    return {
      grpcAddress: server.address,
      adminAddress: admin.address,
      adminSocket: socketPath,
      bundleFile: bundleFiles.pemPath,
      injectorAddress: injector?.address,
      close: shutdown({
        clock, timers,
        // Watchers are told to go (OK status) so they reconnect elsewhere; unary calls get the grace period.
        quiesce: [() => readiness.closing(), unfollow, () => maintenance.stop(), () => heapTrim?.stop(), () => hub.endAll(), () => discovery.quiesce()],
        drain: (graceMs) => server.stop(graceMs),
        listeners: [() => injector?.close(), () => admin.stop(), () => bundleEndpoint?.endpoint.stop()],
        background: [() => discovery.stop(), () => policies?.stop(), () => configWatch.close(), () => caWatch?.close(), () => attestors.stop(), () => federation?.stop(), () => rsaKeys.close()],
        settled: () => Promise.all([maintenance.settled(), hub.settled()]),
        release: [() => store.close(), () => lock.release()],
        onClosed: () => log.info({}, 'control plane stopped'),
      }),
    };
  });
}
