// Two limits a listener or an edge route may set for its own exchanges, over the proxy-wide `limits:`: a long-poll
// API needs a longer `requestTimeout` than its neighbours, a sensor's trickled uploads a lower (or no)
// `minRequestBodyRate`; proxy-wide they could only be changed for every listener and route at once (audit 62b I1, I2),
// where Envoy times each route and Kestrel paces each request.
import type { Schema } from '../../../common/config/schema.js';

/** Overrides of limits.requestTimeout and limits.minRequestBodyRate; absent: the proxy-wide value. */
export interface ExchangeLimits {
  readonly requestTimeoutMs?: number;
  readonly minRequestBodyRate?: number;
}

/** The schema keys, for a listener's or an edge route's properties. */
export const exchangeLimitKeys: Record<string, Schema> = {
  requestTimeout: { type: 'duration', min: 100, description: 'Overrides limits.requestTimeout for this listener or route: until the response head arrives (504 request_timeout)' },
  minRequestBodyRate: { type: 'number', integer: true, min: 0, max: 1_000_000_000, description: 'Overrides limits.minRequestBodyRate for this listener or route (bytes a second; 0: off)' },
};

/** The raw keys, as parsed. */
export interface RawExchangeLimits {
  readonly requestTimeout?: number;
  readonly minRequestBodyRate?: number;
}

/** The overrides `raw` sets (none: an empty object). */
export function exchangeLimits(raw: RawExchangeLimits): ExchangeLimits {
  return { ...(raw.requestTimeout !== undefined ? { requestTimeoutMs: raw.requestTimeout } : {}), ...(raw.minRequestBodyRate !== undefined ? { minRequestBodyRate: raw.minRequestBodyRate } : {}) };
}

/** `limits` with `over`'s values in place of its own; `limits` itself when `over` sets none (shared, not copied). */
export function withExchangeLimits<L extends { readonly requestTimeoutMs: number; readonly minRequestBodyRate: number }>(limits: L, over: ExchangeLimits): L {
  if (over.requestTimeoutMs === undefined && over.minRequestBodyRate === undefined) return limits;
  return { ...limits, requestTimeoutMs: over.requestTimeoutMs ?? limits.requestTimeoutMs, minRequestBodyRate: over.minRequestBodyRate ?? limits.minRequestBodyRate };
}
