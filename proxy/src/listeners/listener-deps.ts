// What every listener needs from the proxy around it, injected by the plane that runs them (local-plane.ts, in the
// proxy's process or in each listener worker), and the part of it that is made the same way everywhere (listenerDeps).
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Timers } from '../../../shared-io/timers.js';
import { DenialTally } from '../authz/denial-tally.js';
import type { PolicyHolder } from '../authz/policy-holder.js';
import type { ProxyConfig, ProxyLimits, RoutingSettings, TransportSettings } from '../config/proxy-config.js';
import type { EdgeCertificatesOptions } from '../edge/edge-certificates.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import { type AccessLog, createRequestIds } from '../telemetry/access-log.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import type { RoutingMetrics } from '../telemetry/routing-metrics.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import { ClientContexts, type TicketKeys } from '../tls/tls-contexts.js';

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
  /** `upgrades:` (lower-case): the protocols an HTTP/1.1 upgrade may switch to on every listener. */
  readonly upgrades: ReadonlySet<string>;
  /** The multiplexed proxy-to-proxy transport: offered by outbound pools, accepted by inbound HTTP/1.1 listeners. */
  readonly transport: TransportSettings;
  /** routing.retry.bufferBytes: the most request body held to send a request again (HTTP/2: a refused stream). */
  readonly retryBufferBytes: number;
  readonly ticketKeys: TicketKeys;
  readonly clientContexts: ClientContexts;
  readonly nowMs: () => number;
  /**
   * Every timer of the listeners (sweeps, deadlines of exchanges and streams, first bytes, lingers): one object,
   * handed to each connection and stream as is, so a request pays for no closure of its own.
   */
  readonly timers: Timers;
  readonly requestId: () => string;
  readonly log: Logger;
  /** Routing to services (present with a control plane): endpoints from discovery, balancer settings. */
  readonly routing?: RoutingDeps;
  /** A listener worker's link to the primary per edge listener: the siblings' last good set, and its own loads. */
  readonly edgeCertificates?: (listener: string) => Pick<EdgeCertificatesOptions, 'lastGood' | 'onLoaded'>;
}

export interface RoutingDeps {
  readonly directory: ServiceDirectory;
  readonly settings: RoutingSettings;
  readonly metrics: RoutingMetrics;
  readonly random: () => number;
  /** Runs `fn` after `ms` (retry backoff). */
  readonly schedule: (ms: number, fn: () => void) => void;
}

/** The holders made and fed outside the listeners (identity, policies, deny-list, ticket keys). */
export type ListenerHolders = Pick<ListenerDeps, 'identity' | 'policies' | 'denyList' | 'metrics' | 'accessLog' | 'tracer' | 'ticketKeys' | 'nowMs' | 'timers' | 'log'>;

/**
 * The rest of ListenerDeps, made alike in every process: the client TLS contexts (with the configured
 * key-exchange groups), request IDs, the denial tally, and routing when a directory feeds `service:` routes.
 */
export async function listenerDeps(config: ProxyConfig, held: ListenerHolders, routed?: { readonly directory: ServiceDirectory; readonly registry: Registry; readonly timers: Timers }): Promise<ListenerDeps & { readonly denials: DenialTally }> {
  const routing: RoutingDeps | undefined = routed
    ? { directory: routed.directory, settings: config.routing, metrics: new (await import('../telemetry/routing-metrics.js')).RoutingMetrics(routed.registry), random: Math.random, schedule: (ms, fn) => void routed.timers.setTimeout(fn, ms) }
    : undefined;
  return { ...held, denials: new DenialTally(), limits: config.limits, upgrades: new Set(config.upgrades), transport: config.transport, retryBufferBytes: config.routing.retry.bufferBytes, clientContexts: new ClientContexts(config.transport.tlsGroups), requestId: createRequestIds(), ...(routing ? { routing } : {}) };
}
