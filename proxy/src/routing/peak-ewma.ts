// Peak-EWMA latency estimate of one endpoint (Finagle / Linkerd / tower `PeakEwma`): the balancer's cost input.

/**
 * Least say a faster sample gets, however close it follows the last one. Without it the estimate of a busy endpoint
 * (hundreds of answers a second) would stay at its last spike for a whole decay time, so on a host where every
 * process sees scheduling spikes the estimates track each replica's latest outlier and equal replicas get unequal
 * shares; with it a spike is forgotten within a few dozen answers, while a replica that is slow on every answer keeps
 * its high estimate, and at low rates the time-based weight governs as before.
 */
const MIN_SAMPLE_WEIGHT = 1 / 16;

/**
 * An estimate with no new sample decays toward a floor (the service's typical latency, given by the balancer) this
 * many times faster than samples blend in (a time constant of decayMs / 10, 1 s by default): an endpoint avoided
 * after one slow answer (a cold start, a GC pause) is tried again within seconds (about ln(spike / typical) time
 * constants) instead of tens of seconds, and one that is still slow peaks again on that answer. Toward a floor, not toward 0: an estimate near 0 made the requests in flight count for nothing in the cost,
 * so the replica that held every long-lived stream (answered once, then quiet) won every draw.
 */
const IDLE_DECAY_SPEEDUP = 10;

/**
 * A slower sample replaces the estimate at once (the "peak"), so a replica that slows down is avoided after one
 * answer; a faster one pulls the estimate down by the time since the last sample, at least by MIN_SAMPLE_WEIGHT.
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
      const w = Math.min(1 - MIN_SAMPLE_WEIGHT, Math.exp(-Math.max(0, nowMs - this.#atMs) / this.#decayMs));
      this.#estimateMs = this.#estimateMs * w + rttMs * (1 - w);
    }
    this.#atMs = Math.max(this.#atMs, nowMs);
  }

  /**
   * The estimate as of `nowMs`, decayed toward `floorMs` for the time without a sample (tower decays on every load
   * read too): an endpoint avoided after a slow spell gets no samples, and without this decay would never be tried
   * again. An estimate below the floor stays (a fast endpoint is not made to look slower by idling).
   */
  estimate(nowMs: number, floorMs = 0): number {
    const idle = nowMs - this.#atMs;
    if (idle <= 0 || this.#estimateMs <= floorMs) return this.#estimateMs;
    return floorMs + (this.#estimateMs - floorMs) * Math.exp((-idle * IDLE_DECAY_SPEEDUP) / this.#decayMs);
  }
}
