// "Tell this at most once per interval, and say how many were held back": the gate behind the log lines that a
// failure repeated per request or per tick must not flood (the control plane's failure log, the proxy's upstream
// handshake failures). Time is given, never read. With a bound on keys (keys made from peer input), a full table
// makes room from keys whose interval is over; a key that still finds none is held back and counted apart, never by
// forgetting every key at once (which would let them all be told again).

export class OncePerInterval {
  readonly #everyMs: number;
  readonly #maxKeys: number;
  /** Per key: when it may be told again, and how many were held back since it last was. */
  readonly #seen = new Map<string, { nextMs: number; leftOut: number }>();
  #overflow = 0;

  constructor(everyMs: number, maxKeys = Number.POSITIVE_INFINITY) {
    this.#everyMs = everyMs;
    this.#maxKeys = maxKeys;
  }

  /** When `key` may be told at `nowMs`: how many of it were held back since; undefined: hold this one back. */
  pass(key: string, nowMs: number): { readonly leftOut: number } | undefined {
    const seen = this.#seen.get(key);
    if (seen && nowMs < seen.nextMs) {
      seen.leftOut++;
      return undefined;
    }
    if (!seen && this.#seen.size >= this.#maxKeys && !this.#makeRoom(nowMs)) {
      this.#overflow++;
      return undefined;
    }
    this.#seen.set(key, { nextMs: nowMs + this.#everyMs, leftOut: 0 });
    return { leftOut: seen?.leftOut ?? 0 };
  }

  /** Keys held back for a full table since the last call; the count starts again. */
  takeOverflow(): number {
    const n = this.#overflow;
    this.#overflow = 0;
    return n;
  }

  #makeRoom(nowMs: number): boolean {
    for (const [k, v] of this.#seen) if (nowMs >= v.nextMs) this.#seen.delete(k);
    return this.#seen.size < this.#maxKeys;
  }
}
