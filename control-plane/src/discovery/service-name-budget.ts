// How many service names self-registration may add to the registry. Every proxy with a forward-proxy listener
// watches all services and keeps at most MAX_VIEW_SERVICES of them: without a bound here, a handful of ordinary
// workload IDs (1,024 registrations each) could fill the registry past that and push every such proxy over its
// cap. So a new name is refused past the names one ID may hold (its replicas together) and past the registry's
// total; what is registered already is never dropped, and a proxy re-sending its set is never refused for it.
import { MAX_VIEW_SERVICES } from '../../../common/contract/discovery-v1.js';
import type { ErrorCode } from '../../../common/errors.js';
import type { ServiceRegistry } from './service-registry.js';

/** Service names one SPIFFE ID may self-register by default: a proxy's whole set (64 per call) fits. */
export const DEFAULT_MAX_SERVICES_PER_ID = 64;
/** The highest `discovery.maxServicesPerIdentity`: an ID holds at most 1,024 registrations anyway. */
export const MAX_SERVICES_PER_ID_LIMIT = 1024;
/** The registry's total by default: what a proxy keeps (the two caps agree). */
export const DEFAULT_MAX_REGISTRY_SERVICES = MAX_VIEW_SERVICES;

export interface ServiceNameLimits {
  /** Services the registry may hold (every source counted) before a new name is refused. */
  readonly maxServices: number;
  /** Distinct names one SPIFFE ID may hold across its sessions. */
  readonly maxServicesPerId: number;
}

/**
 * For one Register request of `spiffeId` on session `sessionId`: a check to run on each entry in order, saying
 * why its service name may not be added (undefined: it may). Names the ID holds already, and names the registry
 * serves already, cost nothing more of the respective bound.
 */
export function serviceNameBudget(
  registry: Pick<ServiceRegistry, 'namesHeldBy' | 'size' | 'endpoints'>,
  spiffeId: string,
  sessionId: string,
  limits: ServiceNameLimits,
): (service: string) => ErrorCode | undefined {
  const mine = registry.namesHeldBy(spiffeId, sessionId);
  let total = registry.size;
  return (service) => {
    if (mine.has(service)) return undefined;
    if (mine.size >= limits.maxServicesPerId) return 'TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES';
    const known = registry.endpoints(service).length > 0;
    if (!known && total >= limits.maxServices) return 'TESSERA_ERR_DISCOVERY_REGISTRY_FULL';
    if (!known) total++;
    mine.add(service);
    return undefined;
  };
}
