// One request and its response through an Http1Session: everything that lives exactly as long as one exchange,
// in an object created per request, so nothing of one exchange can leak into the next (no fields to reset), with
// what is decided from that state alone: its upstream lease, its deadlines, its replay, its record.

import { unflushed } from '../../../common/refusal-reasons.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ExchangeRoute, NextAttempt, RetryReason } from '../routing/exchange-route.js';
import type { ConnectionPool, PoolWait, UpstreamConn, UpstreamOwner } from '../upstream/connection-pool.js';
import { refusedUnprocessed } from '../upstream/unprocessed-refusal.js';
import type { BodyFramer } from './body-framer.js';
import { type HttpHead, headerValue } from './http1-head.js';
import type { ExchangeRecord } from './http1-session-types.js';
import { awaitsContinue, RequestBodyPace } from './request-body-pace.js';
import { TotalTimer } from './total-timer.js';

/** nginx's "client closed request": the status logged when the client left before any response was sent. */
const CLIENT_CLOSED = 499;
/** RFC 9110 section 9.2.2: sent twice, the same effect as once (a request on a stale keep-alive connection goes again). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Why an exchange ended early, Envoy `response_flags` style (the access log's `responseFlags`); `drain_timeout`:
 * still in flight when the proxy's drain deadline (limits.drainTimeout) passed, and cut there.
 */
export type ExchangeFlag = 'request_timeout' | 'total_timeout' | 'stream_idle_timeout' | 'request_body_timeout' | 'drain_timeout' | 'downstream_closed' | 'upstream_closed';

export class Http1Exchange {
  readonly head: HttpHead;
  readonly context: unknown;
  /** Null only for an exchange answered locally (no pool named); every forwarded exchange, the only ones that lease, has one. */
  pool: ConnectionPool | null;
  /** A balanced service: the endpoint of the current attempt, and where a failed one may go again. */
  readonly route: ExchangeRoute<ConnectionPool> | null;
  /** The attempt a retry chose, until the session starts it. */
  next: NextAttempt<ConnectionPool> | null = null;
  /** The request body sent so far, held for a retry while it fits the limit; null: not held (never replayed). */
  #held: Buffer[] | null;
  #heldBytes = 0;
  readonly #holdLimit: number;
  /** Bytes of this attempt went to a connection (pending was flushed). */
  #wrote = false;
  readonly startMs: number;
  /** The head sent upstream, kept for a replay after a stale keep-alive connection or a refused stream. */
  readonly upstreamHead: Buffer;
  /** The Upgrade value forwarded (an upgrade the plan allowed), or null for a plain exchange. */
  readonly upgrade: string | null;
  /** Fields of the upstream's response not sent on (ForwardPlan.dropResponse), or null. */
  readonly dropResponse: ReadonlySet<string> | null;
  /** The listener's or route's total time (`timeout`); Infinity: none. */
  readonly totalDeadlineMs: number;
  /** Until the response head, from the request being complete (headDeadlineMs is set then). */
  readonly requestTimeoutMs: number;
  /** The timer at totalDeadlineMs while the exchange runs; only an exchange with a total has one. */
  #totalTimer: TotalTimer | null = null;
  /** Until the response head: limits.requestTimeout from the moment the request is complete. */
  headDeadlineMs = Number.POSITIVE_INFINITY;
  lastActivityMs: number;

  reqFramer: BodyFramer | null;
  reqDone: boolean;
  conn: UpstreamConn | null = null;
  /** The pool's wait while a lease is to come; withdrawn if the exchange ends first (discardConn). */
  #wait: PoolWait | null = null;
  /** Bytes for upstream while no connection is leased yet. */
  pending: Buffer[];
  resBuf: Buffer | null = null;
  resFramer: BodyFramer | null = null;
  /** Interim (1xx) heads the upstream sent before its final one (bounded: MAX_INTERIM_HEADS). */
  interimHeads = 0;
  interimBytes = 0;
  /** The final response head went to the client: the status is fixed, a failure can only cut the connection. */
  resStarted = false;
  /** The upstream connection cannot carry another exchange after this one. */
  resClosing = false;
  /**
   * Content only, as HTTP/2 counts DATA: the request body the client sent, the response body it was sent (a chunked
   * body without its sizes, CRLFs and trailers); after an upgrade, every byte either way. Heads (the request's,
   * interim and final responses', a 101's) and the proxy's own answers are not counted (docs/metrics.md).
   */
  bytesIn = 0;
  bytesOut = 0;
  /** The length of the 101 head at the start of resBuf when the upgrade is switched (not counted as bytesOut). */
  switchHeadBytes = 0;
  /** The status sent to the client (0: none yet). */
  status = 0;
  /** Sent again to the same upstream (after a stale keep-alive connection or a refused stream): once per exchange. */
  retried = false;
  /** The upstream connection was a resumed TLS session (for the access log). */
  upstreamResumed = false;
  flag: ExchangeFlag | undefined;
  /** Set at a deadline cut: request bytes were waiting to go upstream then (unflushed, or not yet leased). */
  heldUpstream = false;
  /**
   * The request body's pace (limits.minRequestBodyRate after limits.headersTimeout; request-body-pace.ts): a body
   * trickled a byte at a time held its pool slot for as long as it trickled, streamIdleTimeout restarting at each
   * byte (257 from one peer held an app's pool: audit 61b F1). Null: no body, or no pace.
   */
  readonly #pace: RequestBodyPace | null;
  /**
   * `Expect: 100-continue`: the client waits for the app's 100 before its body, so the pace starts when the body
   * does or a 100 is relayed (audit 61i F1: an app that took 12 s to send its 100 had the upload cut, 408).
   */
  #awaitingContinue = false;

  constructor(init: {
    head: HttpHead;
    context: unknown;
    pool: ConnectionPool | null;
    route?: ExchangeRoute<ConnectionPool> | undefined;
    /** With a route: the request may be sent twice, its body held up to this many bytes; undefined: never replayed. */
    replayBodyBytes?: number | undefined;
    startMs: number;
    upstreamHead: Buffer;
    upgrade: string | null;
    dropResponse?: ReadonlySet<string> | undefined;
    totalTimeoutMs: number | undefined;
    /** limits.requestTimeout, or the route's own: from the request being complete until the response head. */
    requestTimeoutMs: number;
    reqFramer: BodyFramer | null;
    /** limits.minRequestBodyRate (0 or absent: no pace) and the grace before it is judged. */
    minBodyRate?: { readonly bytesPerSecond: number; readonly graceMs: number } | undefined;
  }) {
    this.head = init.head;
    this.context = init.context;
    this.route = init.route ?? null;
    this.pool = this.route ? this.route.resource : init.pool;
    this.#holdLimit = init.replayBodyBytes ?? -1;
    this.#held = this.route && this.#holdLimit >= 0 && init.upgrade === null ? [] : null;
    this.startMs = init.startMs;
    this.lastActivityMs = init.startMs;
    this.upstreamHead = init.upstreamHead;
    this.upgrade = init.upgrade;
    this.dropResponse = init.dropResponse ?? null;
    this.totalDeadlineMs = init.totalTimeoutMs ? init.startMs + init.totalTimeoutMs : Number.POSITIVE_INFINITY;
    this.requestTimeoutMs = init.requestTimeoutMs;
    this.reqFramer = init.reqFramer;
    this.reqDone = init.reqFramer === null;
    this.pending = [init.upstreamHead];
    const rate = init.minBodyRate;
    this.#pace = rate && rate.bytesPerSecond > 0 && !this.reqDone ? new RequestBodyPace(rate.bytesPerSecond, rate.graceMs) : null;
    if (this.#pace) {
      this.#awaitingContinue = awaitsContinue(headerValue(init.head, 'expect'));
      if (!this.#awaitingContinue) this.#pace.start(init.startMs);
    }
  }

  /**
   * The body's pace is judged while it is read and no answer has begun: once the app answers, a client still sending
   * (a stream both ways) is governed by streamIdleTimeout alone.
   */
  #paced(): boolean {
    return !this.reqDone && !this.resStarted && this.#pace !== null && !this.#awaitingContinue;
  }

  /** The app's 100 Continue was read (a 103 does not end the client's wait: audit 61j F3): the body's pace starts. */
  continued(): void {
    if (this.#awaitingContinue) this.#startPace();
  }

  /** A 100-continue wait is over (a 100 relayed, or the body began): the grace runs from the last bytes seen. */
  #startPace(): void {
    this.#awaitingContinue = false;
    this.#pace?.start(this.lastActivityMs);
  }

  /** `n` bytes of request content read from the client: counted, and the body's pace credited. */
  bodyReceived(n: number): void {
    this.bytesIn += n;
    if (this.#awaitingContinue) this.#startPace();
    this.#pace?.received(n);
  }

  /**
   * The first flag set wins: it says who or what ended the exchange first. `clientBehind`: the client is not reading
   * what it was sent, which is what holds the upstream back then (an echo the client stopped reading).
   */
  mark(flag: ExchangeFlag, clientBehind = false): void {
    if (this.flag) return;
    this.flag = flag;
    // Who stalled, as the first cause found it (stalledByClient): the upstream, when request bytes wait for it and
    // nothing waits for the client.
    this.heldUpstream = !clientBehind && this.requestHeld();
  }

  /**
   * When the exchange's current wait ends: the earliest of stream idle, the request timeout (until the response
   * head) and the total timeout.
   */
  deadlineMs(streamIdleTimeoutMs: number): number {
    const idle = Math.min(this.lastActivityMs + streamIdleTimeoutMs, this.#paced() ? this.#pace!.dueMs : Number.POSITIVE_INFINITY);
    return Math.min(idle, this.resStarted ? this.totalDeadlineMs : Math.min(this.headDeadlineMs, this.totalDeadlineMs));
  }

  /** Which of those has passed at `now`, if one has (bytes may have moved since the sweep looked). */
  expiredAt(now: number, streamIdleTimeoutMs: number): 'request_timeout' | 'total_timeout' | 'stream_idle_timeout' | 'request_body_timeout' | undefined {
    if (!this.resStarted && now >= this.headDeadlineMs) return 'request_timeout';
    if (now >= this.totalDeadlineMs) return 'total_timeout';
    if (now >= this.lastActivityMs + streamIdleTimeoutMs) return 'stream_idle_timeout';
    // Held back by the proxy (bytes wait to go upstream, or for a connection of the pool), the client is not the slow one.
    return this.#paced() && this.#pace!.behind(now, this.requestHeld()) ? 'request_body_timeout' : undefined;
  }

  /** With a total: `due` runs at its deadline, not at the listener's next sweep, unless clearTotal() came first. */
  armTotal(timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>, nowMs: () => number, due: () => void): void {
    if (this.totalDeadlineMs === Number.POSITIVE_INFINITY) return;
    this.#totalTimer ??= new TotalTimer(timers, nowMs);
    this.#totalTimer.arm(this.totalDeadlineMs, due);
  }

  clearTotal(): void {
    this.#totalTimer?.clear();
  }

  /** Whether request bytes wait to go upstream now: unflushed on the leased connection, or held for one. */
  requestHeld(): boolean {
    return this.conn ? unflushed(this.conn.socket) : this.pending.length > 0;
  }

  /** Body bytes for the app: written to the leased connection, or held until one is leased. False: back off. */
  toUpstream(part: Buffer): boolean {
    if (this.#held) {
      this.#heldBytes += part.length;
      if (this.#heldBytes <= this.#holdLimit) this.#held.push(part);
      else this.#held = null; // past the bounded buffer: this request is never sent twice
    }
    if (!this.conn) {
      this.pending.push(part);
      return true;
    }
    return this.conn.socket.write(part);
  }

  /** The lease came through: what was held goes out in one write. False: back off. */
  leased(conn: UpstreamConn): boolean {
    this.conn = conn;
    this.#wrote = true;
    this.upstreamResumed = conn.resumed;
    const pending = this.pending;
    this.pending = [];
    return conn.socket.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
  }

  /**
   * The attempt's connection went before any answer: whether the request goes again, once, to the same upstream. `conn`
   * was a reused keep-alive connection the upstream had just closed: if nothing was answered yet and sending it twice
   * is harmless. Or `error` says the upstream's proxy refused the attempt's multiplexed stream (RST REFUSED: it
   * processed nothing, and the dialer opens no stream more on that session): on another session, whatever the
   * method, if nothing of an answer came, the whole request is in hand (no body, or its body held: the retry rules)
   * and, to a balanced service, the route allows a retry (its limit and budget); not at or past the total. True: the
   * head (and the held body) are queued for a new lease.
   */
  replayAfter(conn: UpstreamConn, error: Error | undefined, nowMs: number): boolean {
    if (this.resStarted || this.resBuf || this.retried || !this.reqDone) return false;
    if (refusedUnprocessed(error)) {
      if (this.interimHeads > 0 || this.flag !== undefined || nowMs >= this.totalDeadlineMs || (this.reqFramer !== null && this.#held === null)) return false;
      if (this.route && !this.route.replayRefused(this.totalDeadlineMs)) return false;
      this.retried = true;
      this.pending = this.#held && this.#held.length > 0 ? [this.upstreamHead, ...this.#held] : [this.upstreamHead];
      return true;
    }
    if (!conn.reused || this.reqFramer !== null || !IDEMPOTENT.has(this.head.method!)) return false;
    this.retried = true;
    this.pending = [this.upstreamHead];
    return true;
  }

  /**
   * The current attempt failed with `reason`: whether the route sends the request to another endpoint. True: the
   * next attempt is in `next`, for the session to start. Before any byte reached the endpoint any request may go;
   * after, only one whose whole request is held (idempotent or retryable, body within the limit) and unanswered.
   * Never once the exchange was flagged: a client that left (its answer read into the void) wants no retry.
   */
  tryRetry(reason: RetryReason): boolean {
    if (!this.route || this.resStarted || this.flag !== undefined) return false;
    const replayable = this.#held !== null && this.reqDone;
    const next = this.route.retry(reason, replayable, this.totalDeadlineMs);
    if (!next) return false;
    this.next = next;
    return true;
  }

  /** Starts the attempt `next` names: its pool, the head and held body queued again, the response state reset. */
  startNext(): NextAttempt<ConnectionPool> {
    const next = this.next!;
    this.next = null;
    this.pool = next.lease.resource;
    this.resBuf = null;
    this.resFramer = null;
    this.resClosing = false;
    this.upstreamResumed = false;
    // Each endpoint's answer has its own allowance of interim heads (a flood from one ends in a retry).
    this.interimHeads = 0;
    this.interimBytes = 0;
    // Never leased: everything is still in `pending`. Otherwise the head and the held body go again.
    if (this.#wrote) this.pending = this.#held && this.#held.length > 0 ? [this.upstreamHead, ...this.#held] : [this.upstreamHead];
    this.#wrote = false;
    return next;
  }

  /**
   * Asks this attempt's pool for a connection. A wait that ends without a lease frees its place in the queue
   * (discardConn), so requests whose clients left do not fill it and refuse live ones (queue_full).
   */
  lease(owner: UpstreamOwner, cb: (err: Error | null, conn?: UpstreamConn) => void): void {
    // Null when cb already ran: a retry it started may have put its own wait here.
    const wait = this.pool!.acquire(owner, cb);
    if (wait) this.#wait = wait;
  }

  /**
   * Drops the leased upstream connection, if any (the exchange did not end cleanly on it), or stops waiting for one.
   * `reset`: with a reset, not a close (an upgraded connection cut short: its app must not read an orderly end).
   */
  discardConn(reset = false): void {
    const wait = this.#wait;
    if (wait) {
      this.#wait = null;
      this.pool!.withdraw(wait); // a no-op once it was answered
    }
    const conn = this.conn;
    this.conn = null;
    if (conn) this.pool!.discard(conn, reset);
  }

  /** An upgraded connection cut at the stream idle timeout: its upstream leg is closed in order (a FIN), not reset. */
  closeConn(): void {
    const conn = this.conn;
    this.conn = null;
    if (conn) this.pool!.closeDetached(conn);
  }

  /** After a complete exchange: back to the pool if it can carry another one, otherwise dropped. */
  releaseConn(): void {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    // A request answered before its body was all sent leaves the connection in the middle of a message.
    if (this.resClosing || !this.reqDone) this.pool!.discard(conn);
    else this.pool!.release(conn);
  }

  /** What the exchange did, for metrics and the access log; `error`: the local code when the proxy answered or aborted. */
  record(endMs: number, error: string | undefined): ExchangeRecord {
    const head = this.head;
    return {
      method: head.method!,
      target: head.target!,
      status: this.status || CLIENT_CLOSED,
      startMs: this.startMs,
      endMs,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error,
      upstreamResumed: this.upstreamResumed,
      responseFlags: this.flag,
      requestComplete: this.reqDone,
      heldUpstream: this.heldUpstream,
    };
  }
}
