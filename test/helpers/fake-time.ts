// A fake wall clock and fake timers, for unit tests that must never sleep: advance() moves time forward and fires
// every timeout and interval that falls due on the way, in order. Timers run on elapsed time, as real ones do, so
// set() moves the wall clock alone (a host that slept, a clock set by hand) and fires nothing.

import type { Clock } from '../../common/clock.js';
import type { Timers } from '../../shared-io/timers.js';

interface Pending {
  readonly id: number;
  readonly fn: () => void;
  atMs: number;
  /** Set for intervals: when it fires, it is due again this much later. */
  readonly everyMs: number | undefined;
}

export class FakeTime implements Clock, Timers {
  /** Elapsed time, what timers are due by. */
  #elapsedMs = 0;
  /** Wall clock minus elapsed time. */
  #wallOffsetMs: number;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#wallOffsetMs = startMs;
  }

  nowMs(): number {
    return this.#elapsedMs + this.#wallOffsetMs;
  }

  /** Sets the wall clock; timers keep their elapsed-time schedule and nothing fires. */
  set(wallMs: number): void {
    this.#wallOffsetMs = wallMs - this.#elapsedMs;
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.#pending.size;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): unknown {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  clearInterval(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing what falls due in order; the clock reads each timer's due time as it fires. */
  advance(ms: number): void {
    const end = this.#elapsedMs + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.#pending.values()) if (p.atMs <= end && (!next || p.atMs < next.atMs)) next = p;
      if (!next) break;
      this.#elapsedMs = Math.max(this.#elapsedMs, next.atMs);
      if (next.everyMs === undefined) this.#pending.delete(next.id);
      else next.atMs += next.everyMs;
      next.fn();
    }
    this.#elapsedMs = end;
  }

  #add(fn: () => void, ms: number, everyMs: number | undefined): number {
    const id = this.#nextId++;
    this.#pending.set(id, { id, fn, atMs: this.#elapsedMs + Math.max(0, ms), everyMs });
    return id;
  }
}
