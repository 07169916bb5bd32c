// One request and its response through an Http1Session: everything that lives exactly as long as one exchange,
// in an object created per request, so nothing of one exchange can leak into the next (no fields to reset).
import type { ConnectionPool, UpstreamConn } from '../upstream/connection-pool.js';
import type { BodyFramer } from './body-framer.js';
import type { HttpHead } from './http1-head.js';

/** Why an exchange ended early, Envoy `response_flags` style (the access log's `responseFlags`). */
export type ExchangeFlag = 'request_timeout' | 'total_timeout' | 'stream_idle_timeout' | 'downstream_closed' | 'upstream_closed';

export class Http1Exchange {
  readonly head: HttpHead;
  readonly context: unknown;
  /** Null only for an exchange answered locally (no pool named); every forwarded exchange, the only ones that lease, has one. */
  readonly pool: ConnectionPool | null;
  readonly startMs: number;
  /** The head sent upstream, kept for a replay after a stale keep-alive connection. */
  readonly upstreamHead: Buffer;
  /** The Upgrade value forwarded (an upgrade the plan allowed), or null for a plain exchange. */
  readonly upgrade: string | null;
  /** The listener's or route's total time (`timeout`); Infinity: none. */
  readonly totalDeadlineMs: number;
  /** Until the response head: limits.requestTimeout from the moment the request is complete. */
  headDeadlineMs = Number.POSITIVE_INFINITY;
  lastActivityMs: number;

  reqFramer: BodyFramer | null;
  reqDone: boolean;
  conn: UpstreamConn | null = null;
  /** Bytes for upstream while no connection is leased yet. */
  pending: Buffer[];
  resBuf: Buffer | null = null;
  resFramer: BodyFramer | null = null;
  /** The final response head went to the client: the status is fixed, a failure can only cut the connection. */
  resStarted = false;
  /** The upstream connection cannot carry another exchange after this one. */
  resClosing = false;
  bytesIn: number;
  bytesOut = 0;
  /** The status sent to the client (0: none yet). */
  status = 0;
  retried = false;
  /** The upstream connection was a resumed TLS session (for the access log). */
  upstreamResumed = false;
  flag: ExchangeFlag | undefined;

  constructor(init: { head: HttpHead; context: unknown; pool: ConnectionPool | null; startMs: number; upstreamHead: Buffer; upgrade: string | null; totalTimeoutMs: number | undefined; reqFramer: BodyFramer | null }) {
    this.head = init.head;
    this.context = init.context;
    this.pool = init.pool;
    this.startMs = init.startMs;
    this.lastActivityMs = init.startMs;
    this.upstreamHead = init.upstreamHead;
    this.upgrade = init.upgrade;
    this.totalDeadlineMs = init.totalTimeoutMs ? init.startMs + init.totalTimeoutMs : Number.POSITIVE_INFINITY;
    this.reqFramer = init.reqFramer;
    this.reqDone = init.reqFramer === null;
    this.pending = [init.upstreamHead];
    this.bytesIn = init.head.length;
  }

  /** The first flag set wins: it says who or what ended the exchange first. */
  mark(flag: ExchangeFlag): void {
    this.flag ??= flag;
  }
}
