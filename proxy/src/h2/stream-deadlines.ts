// The deadlines of one forwarded HTTP/2 stream (h2-forward.ts forwardStream, Envoy's model): the response head, the
// stream idle and the whole exchange, plus a retry's backoff timer, all cleared together when the exchange ends. A
// deadline that passes calls the owner's cut with its reason; what a cut answers is the owner's (it knows the client
// stream). Kept apart so that forwardStream holds one object, not four timers and the idle clock.
import type { ExchangeFlag } from '../http1/http1-exchange.js';
import type { StreamSettings } from './h2-forward.js';

export type DeadlineFlag = Extract<ExchangeFlag, 'request_timeout' | 'total_timeout' | 'stream_idle_timeout' | 'request_body_timeout'>;

/** A stream's head, idle and total timers and a retry's backoff (one instance per forwarded stream). */
export class StreamDeadlines {
  /** When the total deadline passes (nowMs clock), for the route's backoff within it; +Infinity without one. */
  readonly totalDeadlineMs: number;
  readonly #t: Pick<StreamSettings, 'requestMs' | 'idleMs' | 'totalMs' | 'nowMs' | 'timers'>;
  readonly #cut: (reason: DeadlineFlag) => void;
  // Handles of the listener's timers (t.timers: real ones are unref'd, as these always were).
  #headTimer: unknown;
  readonly #totalTimer: unknown;
  /** A retry's backoff before its attempt. */
  #backoffTimer: unknown;
  // One timer per stream, re-armed lazily: bytes moving only note the time, the timer looks when it fires.
  #idleTimer: unknown;
  #lastMoveMs: number;

  /**
   * Starts the total and idle deadlines; the head deadline too when `headNow` (the request is already complete),
   * else on armHead. `cut` is called once per passing deadline (the owner ignores a cut after its end).
   */
  constructor(t: Pick<StreamSettings, 'requestMs' | 'idleMs' | 'totalMs' | 'nowMs' | 'timers'>, cut: (reason: DeadlineFlag) => void, headNow: boolean) {
    this.#t = t;
    this.#cut = cut;
    this.#lastMoveMs = t.idleMs > 0 ? t.nowMs() : 0;
    if (headNow) this.armHead();
    this.#totalTimer = t.totalMs ? t.timers.setTimeout(() => cut('total_timeout'), t.totalMs) : undefined;
    this.totalDeadlineMs = t.totalMs ? t.nowMs() + t.totalMs : Number.POSITIVE_INFINITY;
    if (t.idleMs > 0) this.#idleTimer = t.timers.setTimeout(this.#idleCheck, t.idleMs);
  }

  /** The head deadline starts (the request is complete, its body included: an upload that moves is not cut). */
  armHead(): void {
    this.#headTimer = this.#t.timers.setTimeout(() => this.#cut('request_timeout'), this.#t.requestMs);
  }

  /** The response head went to the client: no head deadline any more. */
  headSent(): void {
    this.#t.timers.clearTimeout(this.#headTimer);
  }

  /** HEADERS or DATA moved in either direction: the idle deadline starts again (lazily, when its timer looks). */
  moved(): void {
    if (this.#t.idleMs > 0) this.#lastMoveMs = this.#t.nowMs();
  }

  /** Runs `go` after `delayMs` (a retry's backoff), unless the exchange ends first (clear). */
  backoff(go: () => void, delayMs: number): void {
    this.#backoffTimer = this.#t.timers.setTimeout(go, delayMs);
  }

  /** The exchange ended: every timer stops. */
  clear(): void {
    const { timers } = this.#t;
    timers.clearTimeout(this.#headTimer);
    timers.clearTimeout(this.#totalTimer);
    timers.clearTimeout(this.#idleTimer);
    timers.clearTimeout(this.#backoffTimer);
  }

  readonly #idleCheck = (): void => {
    const left = this.#lastMoveMs + this.#t.idleMs - this.#t.nowMs();
    if (left > 0) this.#idleTimer = this.#t.timers.setTimeout(this.#idleCheck, left);
    else this.#cut('stream_idle_timeout');
  };
}
