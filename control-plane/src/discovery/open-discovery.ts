// Turns the `discovery` config into running parts: the service registry (self-registrations persisted in the store),
// its endpoint sources (static file, Kubernetes), the Discovery service's Watch and Register handlers, and their
// reports (gauges, refusals audited). main.ts adds the handlers to the gRPC server and calls tick/quiesce/stop.
import { hostname } from 'node:os';
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { rememberedForMs } from '../../../common/routing/reconnect-window.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { Timers } from '../../../shared-io/timers.js';
import { discoveryWatchReports, registrationReports, registryGauge, skippedGauge, sourceErrorReport } from '../admin/discovery-reports.js';
import type { ControlPlaneMetrics } from '../admin/metrics.js';
import type { StreamCallerDeps } from '../api/stream-caller.js';
import type { DiscoverySettings } from '../config/cp-config.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { AuditLog, MetaStore, RegistrationStore } from '../store/store-contract.js';
import { DiscoveryHub } from './discovery-watch.js';
import type { EndpointSource } from './endpoint-source.js';
import { KubernetesEndpointsSource } from './kubernetes-endpoints-source.js';
import { RegistrationHub } from './registration-service.js';
import { serviceIdentityRule } from './service-identities.js';
import { SourceSync } from './source-sync.js';
import { ServiceRegistry } from './service-registry.js';
import { StaticEndpointsSource } from './static-endpoints-source.js';

export interface DiscoveryDeps extends Pick<StreamCallerDeps, 'svids' | 'peerChain' | 'admit' | 'maxStreamsPerId' | 'streamOpensPerSecond'> {
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: ControlPlaneLogger;
  readonly metrics: ControlPlaneMetrics;
  readonly audit: AuditLog;
  readonly meta: MetaStore;
  readonly registrations: RegistrationStore;
  /** Called after each registration write, so other replicas reload theirs. */
  readonly announce?: () => void;
  /** This replica's name, owner of the sessions it stores (default `<host name>/<pid>`). */
  readonly replica?: string;
}

export interface RunningDiscovery {
  readonly registry: ServiceRegistry;
  /** Watch and Register, for server.addService. */
  readonly handlers: grpc.UntypedServiceImplementation;
  /** Undefined once the endpoint sources have synced (or their deadline passed): why /ready is not, until then. */
  readonly notSyncedReason: () => string | undefined;
  /** The short tick: streams whose SVID expired or whose caller was banned end. */
  tick(): void;
  /** Shutdown: watchers told to go; the registry stops before the Register calls end, so they stay persisted. */
  quiesce(): void;
  /** Stops the sources and the grace timers; resolves once the registry's store writes have landed. */
  stop(): Promise<void>;
}

export async function openDiscovery(config: DiscoverySettings, deps: DiscoveryDeps): Promise<RunningDiscovery> {
  const { clock, timers, log, metrics, audit } = deps;
  const mayServe = serviceIdentityRule(deps.trustDomain, config.serviceIdentities);
  const registry = await ServiceRegistry.open({
    mayServe,
    clock,
    timers,
    nextVersion: () => deps.meta.increment('discovery.version'),
    graceMs: config.registrationGraceMs,
    // Remembered registrations outlive the proxies' longest reconnect delay, whatever the grace for an ended call.
    rememberMs: rememberedForMs(config.registrationGraceMs),
    owner: deps.replica ?? `${hostname()}/${process.pid}`,
    persistence: deps.registrations,
    onPersistError: (e) => log.error({ err: describeError(e) }, 'persisting a registration failed; kept in memory'),
    onPersisted: () => void deps.announce?.(),
    onVersionError: (e) => log.error({ err: describeError(e) }, 'no new discovery version from the store; the change goes out under the current one'),
  });
  const updateGauge = registryGauge(metrics);
  registry.subscribe(() => updateGauge(registry));
  updateGauge(registry);
  const sources: EndpointSource[] = [];
  if (config.staticFile) sources.push(new StaticEndpointsSource({ file: config.staticFile, timers, onError: sourceErrorReport('static', metrics, log) }));
  if (config.kubernetes) sources.push(new KubernetesEndpointsSource({ config: config.kubernetes, trustDomain: deps.trustDomain, log, timers, clock, onSkipped: skippedGauge(metrics) }));
  const caller = { svids: deps.svids, peerChain: deps.peerChain, admit: deps.admit, ...(deps.maxStreamsPerId !== undefined ? { maxStreamsPerId: deps.maxStreamsPerId } : {}), ...(deps.streamOpensPerSecond !== undefined ? { streamOpensPerSecond: deps.streamOpensPerSecond } : {}) };
  // The static source reads its file inside start(), before any stream can open: only the Kubernetes one is awaited.
  const sync = new SourceSync({ pending: config.kubernetes ? ['kubernetes'] : [], deadlineMs: config.kubernetes?.syncTimeoutMs ?? 0, timers, log });
  const watch = new DiscoveryHub({ registry, clock, sync, ...caller, ...discoveryWatchReports(metrics, audit, clock) });
  const register = new RegistrationHub({ registry, clock, mayServe, maxServices: config.maxServices, maxServicesPerId: config.maxServicesPerIdentity, ...caller, ...registrationReports(metrics, audit, clock) });
  for (const s of sources) {
    s.start((view) => {
      registry.setSourceView(s.name, view);
      sync.reported(s.name);
    });
  }
  return {
    registry,
    notSyncedReason: sync.notReadyReason,
    handlers: { ...watch.handlers(), ...register.handlers() },
    tick: () => {
      watch.tick();
      register.tick();
    },
    quiesce: () => {
      watch.endAll();
      registry.stop();
      register.endAll();
    },
    stop: async () => {
      sync.stop();
      for (const s of sources) s.stop();
      registry.stop();
      await registry.settled();
    },
  };
}
