// Why an upstream handshake failed, in the log: the calling side's access log only says upstream_unavailable, and
// the metric label has no upstream. One line per upstream and reason at most once a minute (a dead or misconfigured
// upstream is dialled per request), saying how many were left out since; the table of keys is bounded, and when it is
// full of keys still within their minute a new key waits (counted) rather than resetting every key's minute.
import type { Logger } from 'pino';

const EVERY_MS = 60_000;
const MAX_KEYS = 256;

export class UpstreamRefusalLog {
  readonly #log: Pick<Logger, 'warn'>;
  readonly #nowMs: () => number;
  readonly #direction: string;
  /** Per `host:port reason`: when the next line may be written, and the failures left out meanwhile. */
  readonly #seen = new Map<string, { nextMs: number; suppressed: number }>();
  /** Failures of upstreams not logged because the table was full of keys still within their minute. */
  #overflow = 0;

  constructor(log: Pick<Logger, 'warn'>, nowMs: () => number, direction: string) {
    this.#log = log;
    this.#nowMs = nowMs;
    this.#direction = direction;
  }

  note(upstream: string, expected: string, reason: string, err: Error): void {
    const now = this.#nowMs();
    const key = `${upstream} ${reason}`;
    const seen = this.#seen.get(key);
    if (seen && now < seen.nextMs) {
      seen.suppressed++;
      return;
    }
    if (!seen && this.#seen.size >= MAX_KEYS && !this.#makeRoom(now)) {
      // Full of keys still within their minute: this one waits for a free entry (clearing the table would let
      // every key log again at once, hundreds of lines a second with many failing upstreams).
      this.#overflow++;
      return;
    }
    this.#seen.set(key, { nextMs: now + EVERY_MS, suppressed: 0 });
    const suppressed = seen?.suppressed ?? 0;
    const others = this.#overflow;
    this.#overflow = 0;
    this.#log.warn({ direction: this.#direction, upstream, expected, reason, detail: err.message, ...(suppressed > 0 ? { suppressed } : {}), ...(others > 0 ? { suppressedOtherUpstreams: others } : {}) }, 'upstream handshake failed');
  }

  /** Drops the entries whose minute is over; whether one is free now. */
  #makeRoom(now: number): boolean {
    for (const [k, v] of this.#seen) if (now >= v.nextMs) this.#seen.delete(k);
    return this.#seen.size < MAX_KEYS;
  }
}
