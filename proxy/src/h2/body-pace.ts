// limits.minRequestBodyRate for a request body read from an HTTP/2 stream that goes on as HTTP/1.1 (the edge's
// bridge): each of those streams takes one connection of the route's pool, as an HTTP/1.1 client's request does,
// and streams trickled a byte a second held the pool (audit 61i F2). The rule is the HTTP/1.1 exchange's
// (http1-exchange.ts): after a grace each byte buys 1/rate s; behind that, unless the proxy holds the body back (bytes
// wait to go upstream), the stream is cut. Timed by a timer of its own (the bridge has no sweep), re-armed only when
// it comes due, never per chunk.
import type { Timers } from '../../../shared-io/timers.js';

export interface BodyPaceOptions {
  readonly bytesPerSecond: number;
  readonly graceMs: number;
  readonly nowMs: () => number;
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** Request bytes wait to go upstream: the proxy holds the body back, not the client. */
  readonly held: () => boolean;
  /** The body is behind its pace: cut it (408 before an answer). */
  readonly behind: () => void;
}

export class BodyPace {
  readonly #o: BodyPaceOptions;
  readonly #msPerByte: number;
  #dueMs = Number.POSITIVE_INFINITY;
  #timer: unknown;
  #stopped = false;

  constructor(o: BodyPaceOptions) {
    this.#o = o;
    this.#msPerByte = 1_000 / o.bytesPerSecond;
  }

  /** Its grace starts now (at the head; with `Expect: 100-continue`, at the body's first byte). */
  start(): void {
    if (this.#stopped || this.#dueMs !== Number.POSITIVE_INFINITY) return;
    this.#dueMs = this.#o.nowMs() + this.#o.graceMs;
    this.#arm();
  }

  get started(): boolean {
    return this.#dueMs !== Number.POSITIVE_INFINITY;
  }

  /** `n` bytes of the body read. */
  received(n: number): void {
    if (this.started) this.#dueMs += n * this.#msPerByte;
  }

  /** The body ended, or an answer began (a stream both ways is not paced), or the exchange is over. */
  stop(): void {
    this.#stopped = true;
    this.#o.timers.clearTimeout(this.#timer);
  }

  #arm(): void {
    this.#timer = this.#o.timers.setTimeout(this.#check, Math.max(1, this.#dueMs - this.#o.nowMs()));
  }

  readonly #check = (): void => {
    if (this.#stopped) return;
    const now = this.#o.nowMs();
    if (now >= this.#dueMs && !this.#o.held()) {
      this.#stopped = true;
      this.#o.behind();
      return;
    }
    if (now >= this.#dueMs) this.#dueMs = now + this.#o.graceMs;
    this.#arm();
  };
}
