// Peak-EWMA latency estimate of one endpoint (Finagle / Linkerd / tower `PeakEwma`): the balancer's cost input.

/**
 * A slower sample replaces the estimate at once (the "peak"), so a replica that slows down is avoided after one
 * answer; a faster one only pulls the estimate down as time passes, so one lucky answer does not undo it.
 */
export class PeakEwma {
  readonly #decayMs: number;
  #estimateMs: number;
  #atMs: number;

  constructor(decayMs: number, initialMs: number, nowMs: number) {
    this.#decayMs = Math.max(1, decayMs);
    this.#estimateMs = Math.max(0, initialMs);
    this.#atMs = nowMs;
  }

  /** Feeds one round-trip time measured at `nowMs`. */
  observe(rttMs: number, nowMs: number): void {
    if (!(rttMs >= 0)) return; // NaN or negative: a caller's bug must not poison the estimate
    if (rttMs > this.#estimateMs) {
      this.#estimateMs = rttMs;
    } else {
      // The older the estimate, the less it weighs: after one decay time the sample has ~63 % of the say.
      const w = Math.exp(-Math.max(0, nowMs - this.#atMs) / this.#decayMs);
      this.#estimateMs = this.#estimateMs * w + rttMs * (1 - w);
    }
    this.#atMs = Math.max(this.#atMs, nowMs);
  }

  /**
   * The estimate as of `nowMs`, decayed toward 0 for the time without a sample (tower does the same on every load
   * read): an endpoint avoided after a slow spell gets no samples, and without this decay would never be tried again.
   */
  estimate(nowMs: number): number {
    const idle = nowMs - this.#atMs;
    return idle > 0 ? this.#estimateMs * Math.exp(-idle / this.#decayMs) : this.#estimateMs;
  }
}
