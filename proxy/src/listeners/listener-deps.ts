// What every listener needs from the proxy around it, injected by main.ts.
import type { Logger } from 'pino';
import type { DenialTally } from '../authz/denial-tally.js';
import type { PolicyHolder } from '../authz/policy-holder.js';
import type { ProxyLimits, RoutingSettings, TransportSettings } from '../config/proxy-config.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import type { AccessLog } from '../telemetry/access-log.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import type { RoutingMetrics } from '../telemetry/routing-metrics.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import type { ClientContexts, TicketKeys } from '../tls/tls-contexts.js';

export interface ListenerDeps {
  readonly identity: IdentityStore;
  readonly policies: PolicyHolder;
  /** Operator bans from the control plane (empty for a files-identity proxy). */
  readonly denyList: DenyListHolder;
  readonly metrics: ProxyMetrics;
  /** Denials per policy for the fleet report (absent: not kept). */
  readonly denials?: DenialTally;
  readonly accessLog: AccessLog;
  readonly tracer: RequestTracer | null;
  readonly limits: ProxyLimits;
  /** The multiplexed proxy-to-proxy transport: offered by outbound pools, accepted by inbound HTTP/1.1 listeners. */
  readonly transport: TransportSettings;
  readonly ticketKeys: TicketKeys;
  readonly clientContexts: ClientContexts;
  readonly nowMs: () => number;
  readonly requestId: () => string;
  readonly log: Logger;
  /** Routing to services (present with a control plane): endpoints from discovery, balancer settings. */
  readonly routing?: RoutingDeps;
}

export interface RoutingDeps {
  readonly directory: ServiceDirectory;
  readonly settings: RoutingSettings;
  readonly metrics: RoutingMetrics;
  readonly random: () => number;
  /** Runs `fn` after `ms` (retry backoff). */
  readonly schedule: (ms: number, fn: () => void) => void;
}
