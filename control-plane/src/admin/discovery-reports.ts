// Where the service registry and the Discovery service report to: registry gauges (service labels capped), watcher
// count, refused watches and registrations (counted; a request's registrations for another ID or a service it may
// not serve audited as one row, and any refused caller audited), failing sources (counted and logged). main.ts only
// wires these.
import type { Clock } from '../../../common/clock.js';
import type { TesseraError } from '../../../common/errors.js';
import type { DiscoveryHubOptions } from '../discovery/discovery-watch.js';
import type { SkippedCounts } from '../discovery/endpoint-slice-view.js';
import type { RegistrationHubOptions, RegistrationRefusals } from '../discovery/registration-service.js';
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

/** Refusals that are an attempt to draw traffic that is not the caller's own: always on the record. */
const AUDITED = new Set<string>(['TESSERA_ERR_DISCOVERY_NOT_YOUR_ID', 'TESSERA_ERR_DISCOVERY_SERVICE_NOT_ALLOWED']);

export function registrationReports(metrics: ControlPlaneMetrics, audit: AuditLog, clock: Clock): Pick<RegistrationHubOptions, 'onRefused' | 'onRegistrationsRefused'> {
  const refused = refusedCall('discovery.register_refused', metrics, audit, clock);
  return {
    // A request the call could not take (too large, malformed, too many, too often) or a banned caller's is a
    // refused registration too: counted by its code (a caller whose SVID does not verify is an attestation failure).
    onRefused: (code, caller, detail, spiffeId) => {
      if (code.startsWith('TESSERA_ERR_ISSUANCE_') || code.startsWith('TESSERA_ERR_DISCOVERY_') || code.startsWith('TESSERA_ERR_REVOCATION_')) metrics.registrationsRefused.inc({ code });
      refused(code, caller, detail, spiffeId);
    },
    onRegistrationsRefused: (r: RegistrationRefusals) => {
      for (const [code, n] of Object.entries(r.counts)) metrics.registrationsRefused.inc({ code }, n);
      // One row per request, however many entries it holds: the counts by code, and the first audited entries.
      const examples = r.examples.filter((e) => AUDITED.has(e.code));
      const first = examples[0];
      if (!first) return;
      const counts = Object.fromEntries(Object.entries(r.counts).filter(([code]) => AUDITED.has(code)));
      audit.record(clock.nowMs(), { event: 'registration.refused', result: 'refused', code: first.code, spiffeId: r.caller, caller: r.peer, claimed: first.claimed, service: first.service, address: first.address, counts, examples: examples.map((e) => `${e.code} ${e.service} ${e.address}${e.claimed !== undefined ? ` ${e.claimed.slice(0, 256)}` : ''}`) });
    },
  };
}

const SKIP_REASONS: Readonly<Record<keyof SkippedCounts, string>> = {
  unknownPod: 'unknown_pod',
  noServiceAccount: 'no_service_account',
  badInboundPort: 'bad_inbound_port',
  portNotMeshed: 'port_not_meshed',
  notMeshed: 'not_meshed',
};

/** Keeps tessera_cp_discovery_endpoints_skipped at what the Kubernetes source's current view leaves out. */
export function skippedGauge(metrics: ControlPlaneMetrics): (skipped: SkippedCounts) => void {
  return (skipped) => {
    for (const [key, reason] of Object.entries(SKIP_REASONS)) metrics.discoveryEndpointsSkipped.set({ reason }, skipped[key as keyof SkippedCounts]);
  };
}

/** A source that failed: counted and logged (file:line: key in the message); its last view stays. */
export function sourceErrorReport(source: 'kubernetes' | 'static', metrics: ControlPlaneMetrics, log: Pick<ControlPlaneLogger, 'warn'>): (e: TesseraError) => void {
  return (e) => {
    metrics.discoverySourceErrors.inc({ source });
    log.warn({ source, code: 'TESSERA_ERR_DISCOVERY_SOURCE_FAILED', err: e.message }, 'endpoint source failed; its last view stays');
  };
}
