// Keep-alive pool of upstream connections for one upstream. Each socket gets one permanent set of listeners
// that dispatch to its current owner, so leasing a connection per request adds and removes no listeners.
// Requests beyond maxConnections wait in a bounded queue; one that stops waiting withdraws, freeing its place.
import type { ByteSocket } from '../http1/byte-socket.js';
import { Socket } from 'node:net';
import { TesseraError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import { resetByteSocket } from '../listeners/socket-reset.js';

/** The party a leased connection reports to. */
export interface UpstreamOwner {
  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void;
  /** The upstream closed or failed; the connection is already out of the pool. */
  onUpstreamGone(conn: UpstreamConn, error: Error | undefined): void;
  onUpstreamDrain(conn: UpstreamConn): void;
  /** A detached connection's upstream finished sending (half-close); its write side stays open. */
  onUpstreamEnd?(conn: UpstreamConn): void;
}

export interface UpstreamConn {
  readonly socket: ByteSocket;
  /** The connection may not carry another exchange (a stream of a multiplexed session that is going away). */
  readonly retired?: (() => boolean) | undefined;
  owner: UpstreamOwner | null;
  /** True once it has carried a complete exchange or sat idle (a failure on it may be a stale keep-alive). */
  reused: boolean;
  /** Complete exchanges it has carried. */
  exchanges: number;
  idleSinceMs: number;
  /** True after a clean TLS resumption (for the access log). */
  readonly resumed: boolean;
  gone: boolean;
  /** Taken out of the pool for good (an upgraded connection): never released, not counted as open. */
  detached: boolean;
}

/** Opens one connection; calls back once, when it is ready for bytes or failed. */
export type Connector = (done: (err: Error | null, socket?: ByteSocket, resumed?: boolean, retired?: () => boolean) => void) => void;

export interface PoolOptions {
  readonly connect: Connector;
  /** Max connections open at once (leased + idle); further requests wait in a queue. */
  readonly maxConnections: number;
  readonly maxQueue: number;
  readonly idleTimeoutMs: number;
  /**
   * Exchanges one connection carries before it is closed (absent: no bound). Bounds how long a connection whose
   * answers an app shifted by one (an unsolicited response while a request was in flight) goes on handing each
   * caller the previous caller's answer: HTTP/1.1 has no way to tell; 1 never reuses a connection.
   */
  readonly maxRequests?: number;
  readonly nowMs: () => number;
  /** The linger of closeDetached runs here (the listener's, one object for every pool). */
  readonly timers: Pick<Timers, 'setTimeout'>;
  readonly onOpened?: () => void;
  /**
   * Runs with every sweep (the connector's own upkeep: a multiplexed session's keepalive); says whether the
   * connector still holds something that needs sweeps (a live session).
   */
  readonly onSweep?: () => boolean;
  readonly onClose?: () => void;
}

type Waiter = (err: Error | null, conn?: UpstreamConn) => void;

/**
 * A lease not yet given: queued, or a connection being dialed for it. What acquire returns so its caller can
 * withdraw (an object per waiting request, in place of a closure: no allocation the old waiter did not have).
 */
export class PoolWait {
  readonly owner: UpstreamOwner;
  /** Null once called back or withdrawn: it is called at most once, and never after withdraw. */
  cb: Waiter | null;

  constructor(owner: UpstreamOwner, cb: Waiter) {
    this.owner = owner;
    this.cb = cb;
  }
}

export class ConnectionPool {
  readonly #o: PoolOptions;
  readonly #idle: UpstreamConn[] = [];
  #open = 0;
  #connecting = 0;
  /** Live waiters only (withdraw takes a waiter out), oldest first. */
  readonly #queue: PoolWait[] = [];
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#o = opts;
  }

  get stats(): { open: number; idle: number; queued: number } {
    return { open: this.#open, idle: this.#idle.length, queued: this.#queue.length };
  }

  /** An idle connection (most recently used first) leased to `owner` now, or null: the common case, with no callback. */
  takeIdle(owner: UpstreamOwner): UpstreamConn | null {
    let idle = this.#idle.pop();
    while (idle?.retired?.()) {
      this.discard(idle);
      idle = this.#idle.pop();
    }
    if (!idle) return null;
    idle.owner = owner;
    return idle;
  }

  /**
   * Leases a connection to `owner` (an idle one, most recently used first, or a new one). Returns the wait while
   * `cb` is still to come (a dial or a place in the queue), for withdraw; null when `cb` has already run.
   */
  acquire(owner: UpstreamOwner, cb: Waiter): PoolWait | null {
    const idle = this.takeIdle(owner);
    if (idle) {
      cb(null, idle);
      return null;
    }
    if (this.#closed) {
      cb(new TesseraError('TESSERA_ERR_UPSTREAM_POOL_CLOSED'));
      return null;
    }
    const wait = new PoolWait(owner, cb);
    if (this.#open + this.#connecting < this.#o.maxConnections) {
      this.#dial(wait);
      return wait.cb ? wait : null; // a connector may answer at once
    }
    if (this.#queue.length >= this.#o.maxQueue) {
      // Matched by code (the session answers 503, not 502): the upstream is healthy, just saturated.
      cb(new TesseraError('TESSERA_ERR_UPSTREAM_QUEUE_FULL'));
      return null;
    }
    this.#queue.push(wait);
    return wait;
  }

  /**
   * The caller stopped waiting (its client left, a deadline passed): it is never called back, its place in the
   * queue is free for a live request at once, and a connection being dialed for it goes to the next waiter or idle.
   * A no-op once called back. The queue is at most maxQueue long; only a request that ends while waiting pays this.
   */
  withdraw(wait: PoolWait): void {
    if (!wait.cb) return;
    wait.cb = null;
    const i = this.#queue.indexOf(wait);
    if (i >= 0) this.#queue.splice(i, 1);
  }

  /** Returns a connection after a complete exchange. */
  release(conn: UpstreamConn): void {
    if (conn.detached || conn.retired?.() || ++conn.exchanges >= (this.#o.maxRequests ?? Number.POSITIVE_INFINITY)) {
      this.discard(conn);
      return;
    }
    conn.owner = null;
    if (conn.gone) return;
    conn.reused = true;
    // The last owner may have paused it for its client's backpressure and will never resume it now; an idle
    // socket must also flow to notice the server closing it.
    if (conn.socket.isPaused()) conn.socket.resume();
    this.#handOn(conn);
  }

  /** A free connection goes to the oldest live waiter, or idle. */
  #handOn(conn: UpstreamConn): void {
    const wait = this.#queue.shift();
    if (wait) return void this.#give(wait, null, conn);
    if (this.#closed) return void conn.socket.destroy();
    // Once it has sat idle the upstream may close it under a later request: a failure on it may be stale.
    conn.reused = true;
    conn.idleSinceMs = this.#o.nowMs();
    this.#idle.push(conn);
  }

  #give(wait: PoolWait, err: Error | null, conn?: UpstreamConn): void {
    const cb = wait.cb!;
    wait.cb = null;
    if (conn) conn.owner = wait.owner;
    cb(err, conn);
  }

  /**
   * Takes a leased connection out of the pool for good (it became an upgraded, long-lived byte stream): it stops
   * counting against maxConnections, a queued request may dial in its place, and it is never pooled again. Its
   * events still go to its owner; its end of stream is reported as a half-close, not as the connection gone.
   */
  detach(conn: UpstreamConn): void {
    if (conn.gone || conn.detached) return;
    conn.detached = true;
    this.#open--;
    this.#serveQueue();
  }

  /**
   * Closes a detached connection in order (an upgraded tunnel cut at the stream idle timeout): a socket is destroyed
   * (a FIN), a stream of a multiplexed session is ended (FIN) and what still arrives is dropped until the peer's FIN,
   * within ORDERLY_LINGER_MS. destroy() would reset the stream, which the far proxy passes on as an RST to its app
   * (audit 40b F4): the same cut would then reach the app as a FIN without mux and as a reset with it.
   */
  closeDetached(conn: UpstreamConn): void {
    const s = conn.socket;
    if (s instanceof Socket || s.destroyed) return void this.discard(conn);
    conn.owner = LINGERING;
    s.end();
    s.resume();
    this.#o.timers.setTimeout(() => s.destroy(), ORDERLY_LINGER_MS);
  }

  /** Drops a connection that cannot carry another exchange; `reset`: with a reset (an upgraded tunnel cut short). */
  discard(conn: UpstreamConn, reset = false): void {
    conn.owner = null;
    if (reset) resetByteSocket(conn.socket);
    else conn.socket.destroy();
  }

  /**
   * Closes connections idle longer than the timeout; called by the listener's periodic sweep. Returns whether the
   * pool still holds connections (open, dialing or the connector's sessions), so a quiet listener can stop sweeping.
   */
  sweep(): boolean {
    const limit = this.#o.nowMs() - this.#o.idleTimeoutMs;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const c = this.#idle[i]!;
      if (c.idleSinceMs < limit || c.retired?.()) {
        this.#idle.splice(i, 1);
        c.socket.destroy();
      }
    }
    const connectorHolds = this.#o.onSweep?.() ?? false;
    return connectorHolds || this.#open + this.#connecting > 0;
  }

  /** Closes idle connections now and every other one when it is released. */
  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.socket.destroy();
    for (const w of this.#queue.splice(0)) this.#give(w, new TesseraError('TESSERA_ERR_UPSTREAM_POOL_CLOSED'));
    this.#o.onClose?.();
  }

  #dial(wait: PoolWait): void {
    this.#connecting++;
    this.#o.connect((err, socket, resumed, retired) => {
      this.#connecting--;
      if (err || !socket) {
        if (wait.cb) this.#give(wait, err ?? new Error('connect failed'));
        this.#serveQueue();
        return;
      }
      this.#open++;
      this.#o.onOpened?.();
      const conn: UpstreamConn = { socket, retired, owner: null, reused: false, exchanges: 0, idleSinceMs: 0, resumed: resumed ?? false, gone: false, detached: false };
      const gone = (error?: Error) => {
        if (conn.gone) return;
        conn.gone = true;
        const owner = conn.owner;
        conn.owner = null;
        if (!conn.detached) {
          this.#open--;
          const i = this.#idle.indexOf(conn);
          if (i >= 0) this.#idle.splice(i, 1);
        }
        owner?.onUpstreamGone(conn, error);
        socket.destroy();
        if (!conn.detached) this.#serveQueue();
      };
      socket.on('data', (chunk: Buffer) => {
        if (conn.owner) conn.owner.onUpstreamData(conn, chunk);
        else gone(new Error('unsolicited bytes on an idle upstream connection'));
      });
      socket.on('drain', () => conn.owner?.onUpstreamDrain(conn));
      socket.on('end', () => {
        if (conn.detached && conn.owner?.onUpstreamEnd) conn.owner.onUpstreamEnd(conn);
        else gone();
      });
      socket.on('close', () => gone());
      socket.on('error', (e) => gone(e));
      // Withdrawn while dialing: the new connection serves the next live waiter instead.
      if (wait.cb) this.#give(wait, null, conn);
      else this.#handOn(conn);
    });
  }

  #serveQueue(): void {
    if (this.#queue.length === 0 || this.#closed) return;
    if (this.#open + this.#connecting < this.#o.maxConnections) this.#dial(this.#queue.shift()!);
  }
}

/** How long a stream closed in order (closeDetached) waits for its peer's FIN before it is reset. */
const ORDERLY_LINGER_MS = 5_000;

/** The owner of a stream closed in order: its last bytes are dropped, its peer's FIN completes the close. */
const LINGERING: UpstreamOwner = {
  onUpstreamData: () => undefined,
  onUpstreamGone: () => undefined,
  onUpstreamDrain: () => undefined,
  onUpstreamEnd: (conn) => void conn.socket.destroy(),
};
