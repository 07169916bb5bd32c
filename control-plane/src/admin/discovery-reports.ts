// Where the service registry and the Discovery service report to: registry gauges (service labels capped), watcher
// count, refused watches and registrations (counted; a registration for another ID and any refused caller audited),
// failing sources (counted and logged). main.ts only wires these.
import type { Clock } from '../../../common/clock.js';
import type { TesseraError } from '../../../common/errors.js';
import type { DiscoveryHubOptions } from '../discovery/discovery-watch.js';
import type { RegistrationHubOptions, RegistrationRefused } from '../discovery/registration-service.js';
import type { ServiceRegistry } from '../discovery/service-registry.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { AuditLog } from '../store/store-contract.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { refusedCall } from './refused-call.js';

/** Distinct service label values before the rest are counted under "other". */
export const MAX_SERVICE_LABELS = 200;

/** Keeps tessera_cp_registry_endpoints in step with the registry: call after each change. */
export function registryGauge(metrics: ControlPlaneMetrics): (registry: Pick<ServiceRegistry, 'counts'>) => void {
  // The first services seen keep their label for the process's life, so a label never moves to "other" and back.
  const labelled = new Set<string>();
  return (registry) => {
    const sums = new Map<string, number>();
    for (const { service, source, count } of registry.counts()) {
      if (!labelled.has(service) && labelled.size < MAX_SERVICE_LABELS) labelled.add(service);
      const key = JSON.stringify([labelled.has(service) ? service : 'other', source]);
      sums.set(key, (sums.get(key) ?? 0) + count);
    }
    metrics.registryEndpoints.reset();
    for (const [key, n] of sums) {
      const [service, source] = JSON.parse(key) as [string, string];
      metrics.registryEndpoints.set({ service, source }, n);
    }
  };
}

export function discoveryWatchReports(metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock): Pick<DiscoveryHubOptions, 'onWatchers' | 'onRefused'> {
  return { onWatchers: (n) => metrics.discoveryWatchers.set(n), onRefused: refusedCall('discovery.watch_refused', metrics, audit, clock, 'discovery') };
}

export function registrationReports(metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock): Pick<RegistrationHubOptions, 'onRefused' | 'onRegistrationRefused'> {
  const refused = refusedCall('discovery.register_refused', metrics, audit, clock);
  return {
    // A request the call could not take (too large, malformed) is a refused registration too: counted by its code.
    onRefused: (code, caller, detail) => {
      if (code.startsWith('TESSERA_ERR_ISSUANCE_')) metrics.registrationsRefused.inc({ code });
      refused(code, caller, detail);
    },
    onRegistrationRefused: (r: RegistrationRefused) => {
      metrics.registrationsRefused.inc({ code: r.code });
      // Naming another workload's ID, or a service this one may not serve, is an attempt to draw traffic that is
      // not its own: always on the record.
      if (r.code === 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID' || r.code === 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED') {
        audit.record(clock.nowMs(), { event: 'registration.refused', result: 'refused', code: r.code, spiffeId: r.caller, caller: r.peer, claimed: r.claimed, service: r.service, address: r.address });
      }
    },
  };
}

/** A source that failed: counted and logged (file:line: key in the message); its last view stays. */
export function sourceErrorReport(source: 'kubernetes' | 'static', metrics: ControlPlaneMetrics, log: Pick<ControlPlaneLogger, 'warn'>): (e: TesseraError) => void {
  return (e) => {
    metrics.discoverySourceErrors.inc({ source });
    log.warn({ source, code: 'TESSERA_ERR_DISCOVERY_SOURCE_FAILED', err: e.message }, 'endpoint source failed; its last view stays');
  };
}
