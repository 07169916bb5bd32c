// The open connections of one listener, with one coarse sweep for their deadlines (headers, idle and request
// timeouts) instead of a timer per socket: per-socket timers cost measurable CPU on the hot path.
import type { Socket } from 'node:net';

export interface Expirable {
  readonly deadlineMs: number;
  readonly closed: boolean;
  expire(): void;
  drain(): void;
}

const SWEEP_MS = 1_000;

export class SessionSet {
  readonly #sessions = new Map<Socket, Expirable | null>();
  readonly #nowMs: () => number;
  readonly #onSweep: () => void;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;

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
  add(socket: Socket, session: Expirable): void {
    this.#sessions.set(socket, session);
    socket.once('close', () => this.#sessions.delete(socket));
    if (this.#draining) session.drain();
  }

  /** A TCP connection: it has its own idle timeout; tracked to be cut at the drain deadline. */
  addSocket(socket: Socket): void {
    this.#sessions.set(socket, null);
    socket.once('close', () => this.#sessions.delete(socket));
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
  }
}
