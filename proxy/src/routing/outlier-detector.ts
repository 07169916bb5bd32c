// Outlier detection for one service's endpoints (Envoy's consecutive-failure ejection): which endpoint is ejected,
// until when, and the cap on how many may be ejected at once. Return times are checked lazily: no timers.
import type { OutlierSettings } from '../config/routing-config.js';
import type { AttemptOutcome } from './lease.js';

export type EjectionReason = 'consecutive_failures' | 'identity_mismatch';

/**
 * An ejection lasts base × (times ejected), but no more than this many bases: Envoy's default max_ejection_time
 * (300 s) is 10 × its 30 s base, so an endpoint that recovered is not kept out for hours by a rare bad spell.
 */
const MAX_EJECTION_MULTIPLIER = 10;

/** One endpoint's record, held by the caller next to its endpoint so a pick never looks anything up. */
export class OutlierTrack {
  consecutiveFailures = 0;
  /** Times ejected, ever: each ejection lasts longer than the one before. */
  ejections = 0;
  /** Set while ejected. */
  returnsAtMs: number | undefined = undefined;

  get ejected(): boolean {
    return this.returnsAtMs !== undefined;
  }
}

export class OutlierDetector {
  readonly #settings: OutlierSettings;
  readonly #members = new Set<OutlierTrack>();
  readonly #ejected = new Set<OutlierTrack>();
  /** The earliest return time among the ejected: a pick compares one number, not every endpoint. */
  #nextReturnMs = Number.POSITIVE_INFINITY;

  constructor(settings: OutlierSettings) {
    this.#settings = settings;
  }

  /** A new endpoint of the service: counts toward the ejection cap. */
  track(): OutlierTrack {
    const t = new OutlierTrack();
    this.#members.add(t);
    return t;
  }

  /** The endpoint left the service: outcomes of its last exchanges no longer matter. */
  untrack(t: OutlierTrack): void {
    this.#members.delete(t);
    if (this.#ejected.delete(t)) this.#recomputeNextReturn();
  }

  get ejectedCount(): number {
    return this.#ejected.size;
  }

  /**
   * Counts an attempt's outcome; returns the reason when it ejected the endpoint. Failures while already ejected
   * are ignored: they are the requests that were in flight when it was ejected, not a new spell.
   */
  record(t: OutlierTrack, outcome: AttemptOutcome, nowMs: number): EjectionReason | undefined {
    if (!this.#members.has(t) || t.ejected) return undefined;
    switch (outcome) {
      case 'cancelled':
        return undefined;
      case 'success':
        t.consecutiveFailures = 0;
        return undefined;
      case 'identity_mismatch':
        // Secure naming failed: every connection to it will fail the same way, no need to wait for more.
        t.consecutiveFailures++;
        return this.#eject(t, 'identity_mismatch', nowMs);
      default:
        t.consecutiveFailures++;
        return t.consecutiveFailures >= this.#settings.consecutiveFailures ? this.#eject(t, 'consecutive_failures', nowMs) : undefined;
    }
  }

  /** Brings back every endpoint whose ejection is over; true when one came back (the caller's counts changed). */
  releaseDue(nowMs: number): boolean {
    if (nowMs < this.#nextReturnMs) return false;
    for (const t of this.#ejected) {
      if (t.returnsAtMs! <= nowMs) {
        t.returnsAtMs = undefined;
        // A fresh start: one more failure must not eject it again at once (Envoy resets the counter too).
        t.consecutiveFailures = 0;
        this.#ejected.delete(t);
      }
    }
    this.#recomputeNextReturn();
    return true;
  }

  #eject(t: OutlierTrack, reason: EjectionReason, nowMs: number): EjectionReason | undefined {
    this.releaseDue(nowMs);
    // The cap keeps a service-wide problem (a bad deploy, the caller's own network) from ejecting everything.
    const cap = Math.max(1, Math.floor((this.#members.size * this.#settings.maxEjectionPercent) / 100));
    if (this.#ejected.size >= cap) return undefined;
    t.ejections++;
    t.returnsAtMs = nowMs + this.#settings.baseEjectionMs * Math.min(t.ejections, MAX_EJECTION_MULTIPLIER);
    this.#ejected.add(t);
    this.#nextReturnMs = Math.min(this.#nextReturnMs, t.returnsAtMs);
    return reason;
  }

  #recomputeNextReturn(): void {
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.#ejected) next = Math.min(next, t.returnsAtMs!);
    this.#nextReturnMs = next;
  }
}
