// limits.minRequestBodyRate for a request body read from an HTTP/2 stream that goes on as HTTP/1.1 (the edge's
// bridge): each of those streams takes one connection of the route's pool, as an HTTP/1.1 client's request does,
// and streams trickled a byte a second held the pool (audit 61i F2). The rule is the HTTP/1.1 exchange's
// (http1/request-body-pace.ts); timed here by a timer of its own (the bridge has no sweep), re-armed only when it
// comes due, never per chunk.
import type { Timers } from '../../../shared-io/timers.js';
import { RequestBodyPace } from '../http1/request-body-pace.js';

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
  readonly #pace: RequestBodyPace;
  #timer: unknown;
  #stopped = false;

  constructor(o: BodyPaceOptions) {
    this.#o = o;
    this.#pace = new RequestBodyPace(o.bytesPerSecond, o.graceMs);
  }

  /** Its grace starts now (at the head; with `Expect: 100-continue`, at the body's first byte). */
  start(): void {
    if (this.#stopped || this.#pace.started) return;
    this.#pace.start(this.#o.nowMs());
    this.#arm();
  }

  get started(): boolean {
    return this.#pace.started;
  }

  /** `n` bytes of the body read. */
  received(n: number): void {
    this.#pace.received(n);
  }

  /** The body ended, or an answer began (a stream both ways is not paced), or the exchange is over. */
  stop(): void {
    this.#stopped = true;
    this.#o.timers.clearTimeout(this.#timer);
  }

  #arm(): void {
    this.#timer = this.#o.timers.setTimeout(this.#check, Math.max(1, this.#pace.dueMs - this.#o.nowMs()));
  }

  readonly #check = (): void => {
    if (this.#stopped) return;
    if (!this.#pace.behind(this.#o.nowMs(), this.#o.held())) {
      this.#arm();
      return;
    }
    this.#stopped = true;
    this.#o.behind();
  };
}
