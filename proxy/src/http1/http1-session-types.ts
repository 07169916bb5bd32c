// The contract between the HTTP/1.1 session and the listener that owns it: limits, per-request plan, hooks.
import type { ConnectionPool } from '../upstream/connection-pool.js';
import type { HeadLimits, HttpHead } from './http1-head.js';

export interface SessionLimits extends HeadLimits {
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** How a request goes upstream: `strip` headers removed, `add` appended, `target` in place of the client's. */
export interface ForwardPlan {
  readonly strip?: ReadonlySet<string>;
  /** Complete "name: value\r\n" lines. */
  readonly add: string;
  /** The request target to send (the normalized one the policy decided on); absent = the client's. */
  readonly target?: string;
}

export type RequestPlan =
  | ({ readonly forward: true } & ForwardPlan)
  | { readonly forward: false; readonly status: number; readonly code: string };

/** What an exchange did, for metrics and the access log. */
export interface ExchangeRecord {
  readonly method: string;
  readonly target: string;
  readonly status: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Local error code when the proxy answered or aborted (e.g. authz_denied, upstream_unavailable). */
  readonly error?: string;
  readonly upstreamResumed?: boolean;
  readonly plan?: unknown;
}

export interface SessionHooks {
  /** Decides per request: forward (with headers to add) or answer locally. `head` must not be retained. */
  plan(head: HttpHead): RequestPlan & { readonly context?: unknown };
  done(record: ExchangeRecord, context: unknown): void;
  /** Protocol-level rejections (bad head, timeouts), counted by reason. */
  rejected(reason: string): void;
}

export interface SessionOptions {
  readonly limits: SessionLimits;
  readonly responseLimits: HeadLimits;
  readonly pool: ConnectionPool;
  readonly hooks: SessionHooks;
  readonly nowMs: () => number;
}
