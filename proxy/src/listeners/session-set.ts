// The open connections of one listener, with one coarse sweep for their deadlines (headers, idle and request
// timeouts) instead of a timer per socket: per-socket timers cost measurable CPU on the hot path.
// Held in an array (removal swaps the last entry in), not a Map: a Map or Set that takes a connection at accept and
// drops it at close is rehashed every few dozen connections, and V8 then keeps the connections it held alive through
// the next scavenges: measured on Node 24 with a connection per request, nearly every connection's objects were
// promoted to old space (3-6 MB per scavenge; RSS grew by ~100 MB until a full GC). A WeakMap finds an entry by its
// connection (setPeer, a second add): it shows no such effect.
import { Socket } from 'node:net';
import type { Timers } from '../../../shared-io/timers.js';
import type { DenyCandidate } from '../tls/deny-list.js';
import type { StandingPeer } from '../tls/peer-standing.js';
import { DrainCuts } from './drain-cut.js';
import { IdleSignal } from './idle-signal.js';
import { resetSocket } from './socket-reset.js';

/** Who is on the other end of an mTLS connection: matched against the deny-list and judged by peer-standing.ts. */
export type ConnectionPeer = DenyCandidate & StandingPeer;

/** Says why a peer no longer stands (a metric label), or null. */
export type PeerJudge = (peer: ConnectionPeer, nowMs: number) => string | null;

/** A socket, a stream of a multiplexed session, or an HTTP/2 session: closed the same way (cut: see cut()). */
export interface Connection {
  once(event: 'close', listener: () => void): unknown;
  destroy(): unknown;
}

export interface Expirable {
  readonly deadlineMs: number;
  readonly closed: boolean;
  expire(): void;
  drain(): void;
  /** Drains without waiting for what drain() waits for (a multiplexed stream: its dialer reading the GOAWAY). */
  drainNow?(): void;
  /** The drain deadline passed: record the exchange in flight as cut (drain_timeout), then destroy (HTTP/1.1). */
  cut?(): void;
  /** Cut on purpose (drain deadline, ban), each open exchange reset in its protocol's way (HTTP/2: RST_STREAM CANCEL). */
  abort?(): void;
  /** Called at every sweep until the connection closes, whatever its state (an HTTP/2 session's socket probe). */
  probe?(nowMs: number): void;
}

interface Entry {
  readonly conn: Connection;
  /** The HTTP session (expired by the sweep, drained); null for a TCP connection or one known only by its peer. */
  session: Expirable | null;
  /** Added by add() or addSocket() (counted in size, awaited by idle()), not only named by setPeer(). */
  tracked: boolean;
  /** Who is on the other end (mTLS listeners), so a revocation can find a banned peer's connections. */
  peer: ConnectionPeer | undefined;
  /** Drained because its peer no longer stands (drainLapsed): judged no more. */
  lapsed: boolean;
  /** A stream of a multiplexed session (setPeer): drained with its peer's session, never counted or cut on its own. */
  stream: boolean;
  /** Where it is in #entries; -1 once it has left (closed, and recorded if a tunnel) or destroyAll took it. */
  index: number;
  /** Its connection emitted 'close'. */
  closed: boolean;
  /** A TCP tunnel whose record is not written yet (tunnel()): it stays in the set, and destroyAll waits for it. */
  recordPending: boolean;
  /** Set by destroyAll while it waits for that record. */
  onRecorded: (() => void) | null;
}

const SWEEP_MS = 1_000;

export class SessionSet {
  /** The connections destroyAll() cut: their exchanges say drain_timeout. */
  readonly drainCuts = new DrainCuts();
  readonly #entries: Entry[] = [];
  readonly #byConn = new WeakMap<Connection, Entry>();
  #size = 0;
  readonly #nowMs: () => number;
  readonly #timers: Pick<Timers, 'setInterval' | 'clearInterval'>;
  readonly #onSweep: () => boolean;
  #timer: unknown;
  #started = false;
  #draining = false;
  #peers: { readonly judge: PeerJudge; readonly drained: (reason: string, count: number) => void } | undefined;
  readonly #idle = new IdleSignal();

  /**
   * `time`: the listener's clock and timers (the sweep's interval is unref'd, as real Timers make it). `onSweep` runs
   * with every sweep (the upstream pools' upkeep) and says whether they still hold connections.
   */
  constructor(time: { readonly nowMs: () => number; readonly timers: Pick<Timers, 'setInterval' | 'clearInterval'> }, onSweep: () => boolean) {
    this.#nowMs = time.nowMs;
    this.#timers = time.timers;
    this.#onSweep = onSweep;
  }

  start(): void {
    this.#started = true;
    this.#arm();
  }

  /** True while the periodic sweep runs (it stops while nothing is open on either side). */
  get sweeping(): boolean {
    return this.#timer !== undefined;
  }

  // The sweep runs only while there is something to sweep: each wake-up of an idle sidecar's event loop costs CPU
  // (four 1 s timers and the lag sampler were ~9 ms a second, about 1 % of a core, with nothing open).
  #arm(): void {
    if (this.#timer !== undefined || !this.#started) return;
    this.#timer = this.#timers.setInterval(() => this.sweep(), SWEEP_MS);
  }

  get size(): number {
    return this.#size;
  }

  /** An HTTP session: expired by the sweep, drained on shutdown. */
  add(socket: Connection, session: Expirable): void {
    this.#track(socket, session);
    if (this.#draining) session.drain();
  }

  /** A TCP connection: it has its own idle timeout; tracked to be cut at the drain deadline. */
  addSocket(socket: Connection): void {
    this.#track(socket, null);
  }

  /**
   * `conn` (tracked by addSocket) carries a TCP tunnel, whose exchange is recorded only once both of its legs have
   * closed, some ticks after `conn` itself: it counts as open (idle() waits) and destroyAll waits for it (the access
   * log is closed right after) until the returned function is called, once its record is written. Without this the
   * draining proxy lost the line and count of a tunnel it cut (audit 38a F2).
   */
  tunnel(conn: Connection): () => void {
    const e = this.#entryOf(conn);
    e.recordPending = true;
    return () => {
      if (!e.recordPending) return;
      e.recordPending = false;
      // Its connection closed before: it leaves now (a no-op once destroyAll took it).
      if (e.closed) this.#remove(e);
      const waiting = e.onRecorded;
      e.onRecorded = null;
      waiting?.();
    };
  }

  /** Resolves once no connection is tracked. */
  idle(): Promise<void> {
    return this.#idle.wait(this.#size);
  }

  #track(conn: Connection, session: Expirable | null): void {
    const e = this.#entryOf(conn);
    e.session = session;
    if (e.tracked) return;
    e.tracked = true;
    this.#size++;
    if (this.#timer === undefined) this.#arm();
  }

  /** The entry of `conn`, made (and removed again when it closes) on first sight. */
  #entryOf(conn: Connection): Entry {
    const known = this.#byConn.get(conn);
    if (known) return known;
    const e: Entry = { conn, session: null, tracked: false, peer: undefined, lapsed: false, stream: false, index: this.#entries.length, closed: false, recordPending: false, onRecorded: null };
    this.#entries.push(e);
    this.#byConn.set(conn, e);
    conn.once('close', () => {
      e.closed = true;
      if (!e.recordPending) this.#remove(e);
    });
    return e;
  }

  #remove(e: Entry): void {
    if (e.index < 0) return;
    const last = this.#entries.pop()!;
    if (last !== e) {
      this.#entries[e.index] = last;
      last.index = e.index;
    }
    e.index = -1;
    this.#byConn.delete(e.conn);
    if (!e.tracked) return;
    this.#size--;
    this.#idle.changed(this.#size);
  }

  sweep(): void {
    const now = this.#nowMs();
    // A copy: an expired session may close (and so leave the array) while the loop runs. One pass judges the peers.
    const p = this.#peers;
    const counts = new Map<string, number>();
    for (const e of this.#entries.slice()) {
      const s = e.session;
      if (s && !s.closed && s.deadlineMs < now) s.expire();
      s?.probe?.(now);
      if (p) this.#judge(e, p.judge, now, counts);
    }
    if (p) for (const [reason, n] of counts) p.drained(reason, n);
    const upstreamHolds = this.#onSweep();
    if (this.#size === 0 && !upstreamHolds && this.#timer !== undefined) {
      this.#timers.clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  drain(): void {
    this.#draining = true;
    for (const e of this.#entries.slice()) e.session?.drain();
  }

  /**
   * Cuts every tracked connection (the drain deadline passed). Sessions that can record their exchange as cut do so
   * first, before any connection goes (a mux session's socket would end its streams as if their clients had left).
   * Resolves once each has emitted 'close' and each TCP tunnel's record is written (tunnel()): exchanges recorded
   * from there are in the access log before it closes (the caller bounds the wait).
   */
  destroyAll(): Promise<void> {
    this.#started = false;
    if (this.#timer !== undefined) this.#timers.clearInterval(this.#timer);
    this.#timer = undefined;
    const all = this.#entries.splice(0);
    for (const e of all) {
      e.index = -1;
      this.#byConn.delete(e.conn);
    }
    const entries = all.filter((e) => e.tracked);
    const settled = entries.map(
      (e) =>
        new Promise<void>((resolve) => {
          const closed = () => {
            if (e.recordPending) e.onRecorded = resolve;
            else resolve();
          };
          if (e.closed) closed();
          else e.conn.once('close', closed);
        }),
    );
    const open = entries.filter((e) => !e.closed);
    for (const e of open) this.drainCuts.mark(e.conn);
    for (const e of open) e.session?.cut?.();
    for (const e of open) cut(e);
    this.#size = 0;
    this.#idle.changed(0);
    return Promise.all(settled).then(() => undefined);
  }

  /** Remembers the verified peer of a connection (tracked, or about to be), or of a stream of a multiplexed session. */
  setPeer(conn: Connection, peer: ConnectionPeer, stream = false): void {
    const e = this.#entryOf(conn);
    e.peer = peer;
    e.stream = stream;
  }

  /**
   * Judges the peers of open HTTP connections at every sweep and at each drainLapsed() (a new bundle); `drained` is told
   * how many were drained, by reason.
   */
  watchPeers(judge: PeerJudge, drained: (reason: string, count: number) => void): void {
    this.#peers = { judge, drained };
  }

  /**
   * Drains each HTTP connection (or multiplexed or HTTP/2 session) whose peer the judge refuses: no new request, what
   * is in flight finishes. A TCP tunnel is one exchange already in flight: left to end, as a request would be.
   */
  drainLapsed(): void {
    const p = this.#peers;
    if (!p) return;
    const now = this.#nowMs();
    const counts = new Map<string, number>();
    for (const e of this.#entries.slice()) this.#judge(e, p.judge, now, counts);
    for (const [reason, n] of counts) p.drained(reason, n);
  }

  #judge(e: Entry, judge: PeerJudge, now: number, counts: Map<string, number>): void {
    if (!e.peer || e.lapsed || e.closed || !e.session || e.session.closed) return;
    const reason = judge(e.peer, now);
    if (reason === null) return;
    e.lapsed = true;
    // A stream's exchanges stop now: waiting for its dialer to read the GOAWAY would let a peer that no longer
    // stands go on sending requests on its open streams (audit 57d F1).
    if (e.stream && e.session.drainNow) e.session.drainNow();
    else e.session.drain();
    if (!e.stream) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }

  /** Cuts every connection whose peer matches (e.g. a newly banned one), as destroyAll does; returns how many. */
  closePeers(match: (peer: DenyCandidate) => boolean): number {
    let n = 0;
    for (const e of this.#entries.slice()) {
      // A multiplexed stream goes with its session's connection.
      if (!e.peer || e.closed || e.stream || !match(e.peer)) continue;
      e.peer = undefined;
      cut(e);
      n++;
    }
    return n;
  }
}

/**
 * Cuts one connection. A TCP tunnel is aborted with a reset, not closed: a FIN would read as its client's orderly end
 * (the caller's proxy kept the tunnel open and took its client's bytes for nothing: audit 37a F1); relay() passes the
 * cut on to the tunnel's other leg as a reset too (audit 38a F1). An HTTP/2 session resets each open stream with
 * CANCEL (abort()): destroyed alone it reset them with NO_ERROR, a clean end to its client (audit 54c F1). Anything
 * else is destroyed: its protocol frames its own end.
 */
function cut(e: Entry): void {
  if (e.session?.abort) e.session.abort();
  else if (e.session === null && e.conn instanceof Socket) resetSocket(e.conn);
  else e.conn.destroy();
}
