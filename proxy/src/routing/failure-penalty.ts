// The failure record of one endpoint for its balancer: a penalty, a latency its cost counts at least, set by failed
// attempts and worn away by time and by successes; and whether it is failing or has answered. Without the penalty an
// endpoint that fails fast (a refused connect feeds no latency at all, a quick 503 a tiny one) was the cheapest of
// its service and drew the traffic (audit 57c F2). Linkerd's load biaser injects a fixed 5 s; here it doubles with
// each failure in a row, so one stray failure costs an endpoint little (a fixed one held an endpoint failing 10 % of
// its requests to ~0.2 % of the traffic) and a dead one is tried again ever less often (a backoff of the probes).

/**
 * The penalty fades this many times faster than the latency estimate's decay time (routing.ewmaDecay), as an
 * estimate without answers does (peak-ewma.ts). Held out of the draw above twice the typical latency
 * (balanced-endpoint.ts heldOut), an endpoint is back (k - 1) × ln 2 time constants after its k-th failure in a row
 * (0.7 s more per failure at the default 10 s decay), at most ln(cap / (2 × typical)) (~9 s for a 60 s cap and 3 ms
 * answers): an endpoint that recovered gets its traffic back within seconds.
 */
const FADE_SPEEDUP = 10;

/** Below this a penalty is gone (a success halves it: it would otherwise never reach 0). */
const NEGLIGIBLE_MS = 0.001;

/** What a failure is measured against. */
export interface FailureScale {
  /** The service's typical latency now: the first failure in a row costs twice it, each further one doubles. */
  readonly typicalMs: number;
  /** How long the attempt waited without an answer (a timeout's whole wait): the penalty is at least that. */
  readonly waitedMs: number;
  /** The most it may be: limits.requestTimeout, the longest an attempt may wait for its answer. */
  readonly capMs: number;
}

export class FailurePenalty {
  readonly #fadeMs: number;
  /** Failures since the last success. */
  #streak = 0;
  #proven = false;
  #levelMs = 0;
  #atMs = 0;

  constructor(decayMs: number) {
    this.#fadeMs = Math.max(1, decayMs / FADE_SPEEDUP);
  }

  /** Its last attempts failed (none succeeded since): a retry goes elsewhere while it can. */
  get failing(): boolean {
    return this.#streak > 0;
  }

  /** It has answered an attempt successfully (since it was added or ready again): a retry goes here first. */
  get proven(): boolean {
    return this.#proven && this.#streak === 0;
  }

  /** The penalty as of `nowMs`: what the failures set, faded for the time since. */
  valueMs(nowMs: number): number {
    if (this.#levelMs === 0) return 0;
    // A clock that went back: no growth.
    return this.#levelMs * Math.exp(-Math.max(0, nowMs - this.#atMs) / this.#fadeMs);
  }

  /**
   * A failed attempt (or a stream turned away): the penalty is at least typical × 2^(failures in a row) and at least
   * the attempt's unanswered wait, at most the cap; never lowered by a failure.
   */
  failed(nowMs: number, s: FailureScale): void {
    this.#streak++;
    const doubled = s.typicalMs * 2 ** Math.min(this.#streak, 60);
    this.#levelMs = Math.min(s.capMs, Math.max(this.valueMs(nowMs), doubled, s.waitedMs));
    this.#atMs = nowMs;
  }

  /**
   * A successful attempt ends the streak and halves what is left: the attempt that finds a recovered endpoint is
   * made once the penalty has faded, so a few successes give it its share back, while one success between
   * failures does not undo a timeout's long wait at once.
   */
  succeeded(nowMs: number): void {
    this.#streak = 0;
    this.#proven = true;
    if (this.#levelMs === 0) return;
    const left = this.valueMs(nowMs) / 2;
    this.#levelMs = left < NEGLIGIBLE_MS ? 0 : left;
    this.#atMs = nowMs;
  }
}
