// The contract between the HTTP/1.1 session and the listener that owns it: limits, per-request plan, hooks.

import type { RefusalReason } from '../../../common/refusal-reasons.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ExchangeLimits } from '../config/exchange-limits.js';
import type { ExchangeRoute } from '../routing/exchange-route.js';
import type { ConnectionPool } from '../upstream/connection-pool.js';
import type { HeadLimits, HttpHead } from './http1-head.js';

export interface SessionLimits extends HeadLimits {
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Until the response head arrives, counted from the request being complete (504 request_timeout). */
  readonly requestTimeoutMs: number;
  /** No bytes in either direction for this long ends an exchange or an upgraded connection. */
  readonly streamIdleTimeoutMs: number;
  /** Bytes a second a request body must average while the proxy waits for it, after headersTimeoutMs; 0: off. */
  readonly minRequestBodyRate: number;
}

/** How a request goes upstream: `strip` headers removed, `add` appended, `target` in place of the client's. */
export interface ForwardPlan {
  readonly strip?: ReadonlySet<string>;
  /** Complete "name: value\r\n" lines. */
  readonly add: string;
  /** The request target to send (the normalized one the policy decided on); absent = the client's. */
  readonly target?: string;
  /** The upstream pool for this request (per-request routing, e.g. the edge); absent = SessionOptions.pool. */
  readonly pool?: ConnectionPool;
  /** A balanced service: the pool of each attempt comes from it, and a failed attempt may go to another endpoint. */
  readonly route?: ExchangeRoute<ConnectionPool>;
  /** With `route`: the request may be sent twice (idempotent or retryable), its body held up to this many bytes. */
  readonly replayBodyBytes?: number;
  /** Total time for the exchange (a listener's or route's `timeout`); overrides SessionOptions.totalTimeoutMs. */
  readonly totalTimeoutMs?: number;
  /** A route's own requestTimeout and minRequestBodyRate (an edge route's); over SessionOptions.limits. */
  readonly limits?: ExchangeLimits;
  /**
   * Lets an upgrade request (Upgrade + Connection: upgrade, HTTP/1.1, a protocol in SessionOptions.upgrades) go
   * upstream as one: after the app's 101 the connection carries bytes both ways. Absent: such a request is answered
   * 501 upgrade_unsupported.
   */
  readonly upgrade?: boolean;
  /**
   * Fields of the upstream's response (head and chunked trailers) not sent on: an app's copies of what only the
   * proxy says, where the upstream is an app (listeners/app-owned-fields.ts). Absent: all sent on.
   */
  readonly dropResponse?: ReadonlySet<string>;
}

export type RequestPlan =
  | ({ readonly forward: true } & ForwardPlan)
  | { readonly forward: false; readonly status: number; readonly code: RefusalReason };

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
  /** Why it ended early: request_timeout, total_timeout, stream_idle_timeout, downstream_closed, upstream_closed. */
  readonly responseFlags?: string;
  /** The client's whole request body was read (a stream_idle_timeout before it is the client's stall: 408). */
  readonly requestComplete: boolean;
  /** A stream idle cut came while request bytes waited to go upstream: the upstream's stall (504), not the client's. */
  readonly heldUpstream?: boolean;
  readonly plan?: unknown;
}

export interface SessionHooks {
  /** Decides per request: forward (with headers to add) or answer locally. `head` must not be retained. */
  plan(head: HttpHead): RequestPlan & { readonly context?: unknown };
  done(record: ExchangeRecord, context: unknown): void;
  /** Protocol-level rejections (bad head, timeouts), counted by reason. */
  rejected(reason: string): void;
  /** An exchange became an upgraded connection (+1, after the app's 101) or such a connection ended (-1). */
  upgraded?(delta: 1 | -1): void;
}

export interface SessionOptions {
  readonly limits: SessionLimits;
  readonly responseLimits: HeadLimits;
  /**
   * The protocols (lower-case) an upgrade may switch to (`upgrades:`, upgrade-offer.ts): an offer naming any other
   * is dropped and the request forwarded as a plain one.
   */
  readonly upgrades: ReadonlySet<string>;
  /** Default upstream pool; a plan's `pool` overrides it. Absent: a plan without `pool` is answered 502. */
  readonly pool?: ConnectionPool;
  readonly hooks: SessionHooks;
  /** Default total time per exchange (the listener's `timeout`); absent: none, a stream runs while it moves. */
  readonly totalTimeoutMs?: number;
  /**
   * Headers added to every response head sent on this connection, forwarded (replacing the upstream's fields of
   * the same names) or local; not to 1xx or 101. E.g. the edge's strict-transport-security.
   */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /**
   * The connection's first request head must arrive within limits.headersTimeout from the start (the edge: a
   * silent new connection is cut as headers_timeout). Default: a silent connection is an idle one.
   */
  readonly firstHeadTimeout?: boolean;
  /**
   * The client is a plaintext TCP socket (an app's own connection): TCP_NODELAY is set only before a second write
   * or a larger first one (Nagle never holds a first segment: nothing is in flight yet), and the connection of a
   * client that asked to close is closed as soon as its last response is in the kernel, which sends it and then the
   * FIN, instead of half-closed and held open until the client's own FIN, as nginx does. Three system calls fewer
   * per connection; a client that keeps sending after its own `Connection: close` gets a reset instead of silence.
   */
  readonly plainTcpClient?: boolean;
  readonly nowMs: () => number;
  /** The timers of an exchange's total deadline (armed only for one with a total) and of an answer read into the void. */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** Runs `fn` after `ms` (a retry's backoff); absent: at once. */
  readonly schedule?: (ms: number, fn: () => void) => void;
}
