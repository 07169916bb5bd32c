// Why an upstream handshake failed, in the log: the calling side's access log only says upstream_unavailable, and
// the metric label has no upstream. One line per upstream and reason at most once a minute (a dead or misconfigured
// upstream is dialled per request), saying how many were left out since; the table of keys is bounded.
import type { Logger } from 'pino';

const EVERY_MS = 60_000;
const MAX_KEYS = 256;

export class UpstreamRefusalLog {
  readonly #log: Pick<Logger, 'warn'>;
  readonly #nowMs: () => number;
  readonly #direction: string;
  /** Per `host:port reason`: when the next line may be written, and the failures left out meanwhile. */
  readonly #seen = new Map<string, { nextMs: number; suppressed: number }>();

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
    if (!seen && this.#seen.size >= MAX_KEYS) this.#seen.clear();
    this.#seen.set(key, { nextMs: now + EVERY_MS, suppressed: 0 });
    const suppressed = seen?.suppressed ?? 0;
    this.#log.warn({ direction: this.#direction, upstream, expected, reason, detail: err.message, ...(suppressed > 0 ? { suppressed } : {}) }, 'upstream handshake failed');
  }
}
