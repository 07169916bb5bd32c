// The open connections of one listener, with one coarse sweep for their deadlines (headers, idle and request
// timeouts) instead of a timer per socket: per-socket timers cost measurable CPU on the hot path.
import type { DenyCandidate } from '../tls/deny-list.js';
import { IdleSignal } from './idle-signal.js';

/** A socket, a stream of a multiplexed session, or an HTTP/2 session: closed and destroyed the same way. */
export interface Connection {
  once(event: 'close', listener: () => void): unknown;
  destroy(): unknown;
}

export interface Expirable {
  readonly deadlineMs: number;
  readonly closed: boolean;
  expire(): void;
  drain(): void;
}

const SWEEP_MS = 1_000;

export class SessionSet {
  readonly #sessions = new Map<Connection, Expirable | null>();
  /** Who is on the other end (mTLS listeners), so a revocation can find a banned peer's connections. */
  readonly #peers = new Map<Connection, DenyCandidate>();
  readonly #nowMs: () => number;
  readonly #onSweep: () => void;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  readonly #idle = new IdleSignal();

  constructor(nowMs: () => number, onSweep: () => void) {
    this.#nowMs = nowMs;
    this.#onSweep = onSweep;
  }

  start(): void {
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** An HTTP session: expired by the sweep, drained on shutdown. */
  add(socket: Connection, session: Expirable): void {
    this.#sessions.set(socket, session);
    socket.once('close', () => this.#remove(socket));
    if (this.#draining) session.drain();
  }

  /** A TCP connection: it has its own idle timeout; tracked to be cut at the drain deadline. */
  addSocket(socket: Connection): void {
    this.#sessions.set(socket, null);
    socket.once('close', () => this.#remove(socket));
  }

  /** Resolves once no connection is tracked. */
  idle(): Promise<void> {
    return this.#idle.wait(this.#sessions.size);
  }

  #remove(socket: Connection): void {
    this.#sessions.delete(socket);
    this.#idle.changed(this.#sessions.size);
  }

  sweep(): void {
    const now = this.#nowMs();
    for (const s of this.#sessions.values()) if (s && !s.closed && s.deadlineMs < now) s.expire();
    this.#onSweep();
  }

  drain(): void {
    this.#draining = true;
    for (const s of this.#sessions.values()) s?.drain();
  }

  destroyAll(): void {
    if (this.#timer) clearInterval(this.#timer);
    for (const socket of this.#sessions.keys()) socket.destroy();
    this.#sessions.clear();
    this.#idle.changed(0);
  }

  /** Remembers the verified peer of a tracked connection. */
  setPeer(conn: Connection, peer: DenyCandidate): void {
    this.#peers.set(conn, peer);
    conn.once('close', () => this.#peers.delete(conn));
  }

  /** Destroys every connection whose peer matches (e.g. a newly banned one); returns how many. */
  closePeers(match: (peer: DenyCandidate) => boolean): number {
    let n = 0;
    for (const [conn, peer] of [...this.#peers]) {
      if (!match(peer)) continue;
      this.#peers.delete(conn);
      conn.destroy();
      n++;
    }
    return n;
  }
}
