// The proxy config's routing keys (DESIGN.md section 11): what an outbound listener routes to (a static upstream,
// a discovered service, or any service by Host as a forward proxy), what an inbound listener registers, and the
// balancer's retry, ejection and slow-start settings. Schema, defaults and the checks a schema cannot express.
import type { ObjectSchema, Schema } from '../../../common/config/schema.js';
import { defaultsOf } from '../../../common/config/validate-yaml.js';
import { isServiceName } from '../../../common/routing/service-endpoint.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { Address } from './address.js';

/** Where an outbound listener sends what its app sends. */
export type OutboundRoute =
  /** One fixed upstream proxy that must present `spiffeId` (DESIGN section 8). */
  | { readonly kind: 'static'; readonly upstream: Address; readonly spiffeId: SpiffeId }
  /** Every request balanced over the service's endpoints from discovery, each with its own expected SPIFFE ID. */
  | { readonly kind: 'service'; readonly service: string }
  /** A forward proxy (HTTP_PROXY): absolute-form requests and CONNECT, routed by host to any known service. */
  | { readonly kind: 'http-proxy' };

/** What an inbound listener registers with the control plane (`service:`). */
export interface Registration {
  readonly service: string;
  /** The address callers dial; absent: the listen address (an unspecified host is replaced by the control plane). */
  readonly advertise?: Address;
  readonly zone: string;
  readonly weight: number;
}

export interface RetrySettings {
  /** Extra load retries may add, as a share of requests (Linkerd's retry_ratio). */
  readonly budgetRatio: number;
  /** Retries always allowed per second, whatever the ratio. */
  readonly minRetriesPerSecond: number;
  /** The window the ratio is counted over. */
  readonly budgetTtlMs: number;
  /** Attempts after the first, at most. */
  readonly maxRetries: number;
  /** First backoff before a retry on 5xx or reset; doubles (with jitter) up to backoffMaxMs. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** A request body larger than this is not kept for a retry: such a request is never retried after it was sent. */
  readonly bufferBytes: number;
}

export interface OutlierSettings {
  /** Consecutive failures (5xx, reset, connect or TLS failure) that eject an endpoint. */
  readonly consecutiveFailures: number;
  /** The first ejection lasts this long; each further one of the same endpoint lasts one more of it. */
  readonly baseEjectionMs: number;
  /** Share of a service's endpoints that may be ejected at once (at least one always may). */
  readonly maxEjectionPercent: number;
}

export interface RoutingSettings {
  readonly retry: RetrySettings;
  readonly outlier: OutlierSettings;
  /** A new endpoint's share ramps up over this window (0: off). */
  readonly slowStartMs: number;
  /** Peak-EWMA decay time constant. */
  readonly ewmaDecayMs: number;
  /** Latency assumed for an endpoint before its first response. */
  readonly defaultRttMs: number;
}

const serviceName: Schema = { type: 'string', minLength: 1, check: (v) => (isServiceName(v) ? null : 'must be a service name: [a-z0-9.-]+, starting and ending with a letter or digit') };

/** Keys added to each inbound listener. */
export const inboundRoutingKeys: Record<string, Schema> = {
  service: { ...serviceName, description: 'Registers this listener as an endpoint of the named service (needs identity.controlPlane)' },
  advertise: { type: 'string', format: 'address', description: 'The address callers dial, when not the listen address (e.g. the pod IP)' },
  zone: { type: 'string', minLength: 1, check: (v) => (v.length <= 63 ? null : 'must be at most 63 characters'), description: 'Zone reported with the registration' },
  weight: { type: 'number', integer: true, min: 1, max: 1000, description: 'Relative weight reported with the registration (default 100)' },
};

/** Keys added to each outbound listener (exactly one of upstream, service, mode: http-proxy). */
export const outboundRoutingKeys: Record<string, Schema> = {
  upstream: { type: 'string', format: 'address', description: 'A fixed upstream proxy (with spiffeId)' },
  spiffeId: { type: 'string', format: 'spiffe-id', description: 'The identity the fixed upstream must present' },
  service: { ...serviceName, description: 'Balance every request over the endpoints of this service (needs identity.controlPlane)' },
  mode: { type: 'string', enum: ['direct', 'http-proxy'], default: 'direct', description: 'http-proxy: a forward proxy for HTTP_PROXY (absolute-form requests and CONNECT), routed by host to services' },
  retryable: { type: 'boolean', default: false, description: 'Retry every method (not only GET, HEAD, OPTIONS) on 5xx or reset, when its body fits routing.retry.bufferBytes' },
};

export const routingSchema: ObjectSchema = {
  type: 'object',
  absentAsEmpty: true,
  properties: {
    retry: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        budgetRatio: { type: 'number', min: 0, max: 1, default: 0.2, description: 'Extra load retries may add (0.2: one retry per five requests)' },
        minRetriesPerSecond: { type: 'number', min: 0, max: 10_000, default: 10 },
        budgetTtl: { type: 'duration', min: 1_000, max: 60_000, default: '10s', description: 'Window the budget ratio is counted over' },
        maxRetries: { type: 'number', integer: true, min: 0, max: 5, default: 2 },
        backoffBase: { type: 'duration', min: 0, max: 10_000, default: '25ms' },
        backoffMax: { type: 'duration', min: 0, max: 60_000, default: '250ms' },
        bufferBytes: { type: 'number', integer: true, min: 0, max: 1 << 24, default: 65_536, description: 'Largest request body kept for a retry' },
      },
    },
    outlier: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        consecutiveFailures: { type: 'number', integer: true, min: 1, max: 1000, default: 5 },
        baseEjectionTime: { type: 'duration', min: 100, max: 3_600_000, default: '30s' },
        maxEjectionPercent: { type: 'number', min: 0, max: 100, default: 50 },
      },
    },
    slowStart: { type: 'duration', min: 0, max: 600_000, default: '10s', description: 'A new endpoint gets a growing share of requests over this window' },
    ewmaDecay: { type: 'duration', min: 100, max: 600_000, default: '10s', description: 'Peak-EWMA latency decay time' },
    defaultRtt: { type: 'duration', min: 1, max: 10_000, default: '30ms', description: 'Latency assumed for an endpoint before its first answer' },
  },
};

/** `routing:` as the schema gives it: every key, its default filled in (absentAsEmpty). */
export interface RawRouting {
  retry: { budgetRatio: number; minRetriesPerSecond: number; budgetTtl: number; maxRetries: number; backoffBase: number; backoffMax: number; bufferBytes: number };
  outlier: { consecutiveFailures: number; baseEjectionTime: number; maxEjectionPercent: number };
  slowStart: number;
  ewmaDecay: number;
  defaultRtt: number;
}

export function resolveRouting(raw: RawRouting): RoutingSettings {
  const { retry: r, outlier: o } = raw;
  return Object.freeze({
    retry: Object.freeze({
      budgetRatio: r.budgetRatio,
      minRetriesPerSecond: r.minRetriesPerSecond,
      budgetTtlMs: r.budgetTtl,
      maxRetries: r.maxRetries,
      backoffBaseMs: r.backoffBase,
      backoffMaxMs: r.backoffMax,
      bufferBytes: r.bufferBytes,
    }),
    outlier: Object.freeze({ consecutiveFailures: o.consecutiveFailures, baseEjectionMs: o.baseEjectionTime, maxEjectionPercent: o.maxEjectionPercent }),
    slowStartMs: raw.slowStart,
    ewmaDecayMs: raw.ewmaDecay,
    defaultRttMs: raw.defaultRtt,
  });
}

/** The settings of a config without `routing:` (tests and bench start from it): the schema's defaults, resolved. */
export const DEFAULT_ROUTING: RoutingSettings = resolveRouting(defaultsOf<RawRouting>(routingSchema));
