// limits.minRequestBodyRate, the rule alone: a request body is due by a time that starts a grace after it begins
// being waited for, and each byte read buys 1/rate s more. Judged when due: behind, unless the proxy holds the body
// back (bytes wait to go upstream), which starts a new grace. A body trickled a byte at a time held its upstream's
// pool slot for as long as it trickled (audit 61b F1). Used by the HTTP/1.1 exchange (checked by its listener's
// sweep) and by the edge's HTTP/2 → HTTP/1.1 bridge (a timer of its own: h2/body-pace.ts).
/** An `Expect` value asking for a 100 before the body: the pace waits for that 100 or the body's first byte. */
export function awaitsContinue(expect: string | undefined): boolean {
  return expect?.trim().toLowerCase() === '100-continue';
}

export class RequestBodyPace {
  readonly #graceMs: number;
  readonly #msPerByte: number;
  #dueMs = Number.POSITIVE_INFINITY;

  constructor(bytesPerSecond: number, graceMs: number) {
    this.#graceMs = graceMs;
    this.#msPerByte = 1_000 / bytesPerSecond;
  }

  /** When the body is due; +Infinity until it started. */
  get dueMs(): number {
    return this.#dueMs;
  }

  get started(): boolean {
    return this.#dueMs !== Number.POSITIVE_INFINITY;
  }

  /** The grace starts at `nowMs` (once). */
  start(nowMs: number): void {
    if (!this.started) this.#dueMs = nowMs + this.#graceMs;
  }

  /** `n` bytes of the body read. */
  received(n: number): void {
    if (this.started) this.#dueMs += n * this.#msPerByte;
  }

  /** At `nowMs`, due: behind its pace (true), or held back by the proxy (a new grace from now, false). */
  behind(nowMs: number, held: boolean): boolean {
    if (nowMs < this.#dueMs) return false;
    if (!held) return true;
    this.#dueMs = nowMs + this.#graceMs;
    return false;
  }
}
