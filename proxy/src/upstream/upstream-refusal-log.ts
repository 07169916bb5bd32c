// Why an upstream handshake (or the TCP connect before it) failed, in the log: the calling side's access log only says upstream_unavailable, and
// the metric label has no upstream. One line per upstream and reason at most once a minute (a dead or misconfigured
// upstream is dialled per request), saying how many were left out since; the table of keys is bounded, and when it is
// full of keys still within their minute a new key waits, counted (common/once-per-interval.ts).
import type { Logger } from 'pino';
import { OncePerInterval } from '../../../common/once-per-interval.js';

export class UpstreamRefusalLog {
  readonly #log: Pick<Logger, 'warn'>;
  readonly #nowMs: () => number;
  readonly #direction: string;
  /** Per `host:port reason`, once a minute; 256 keys at most (upstreams come from discovery). */
  readonly #gate = new OncePerInterval(60_000, 256);

  constructor(log: Pick<Logger, 'warn'>, nowMs: () => number, direction: string) {
    this.#log = log;
    this.#nowMs = nowMs;
    this.#direction = direction;
  }

  note(upstream: string, expected: string, reason: string, err: Error): void {
    const told = this.#gate.pass(`${upstream} ${reason}`, this.#nowMs());
    if (!told) return;
    const others = this.#gate.takeOverflow();
    const suppressed = told.leftOut;
    // A TCP connect that failed never reached TLS: said as such, not as a handshake (reason `connect_failed`).
    const what = reason === 'connect_failed' ? 'upstream connect failed' : 'upstream handshake failed';
    this.#log.warn({ direction: this.#direction, upstream, expected, reason, detail: err.message, ...(suppressed > 0 ? { suppressed } : {}), ...(others > 0 ? { suppressedOtherUpstreams: others } : {}) }, what);
  }
}
