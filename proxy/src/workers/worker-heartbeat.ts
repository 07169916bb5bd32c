// The primary's liveness check of its listener workers (docs/workers.md "Failures and drain"). A worker that is
// alive but not turning its event loop (stopped, deadlocked in native code, starved for good) still holds its share
// of SO_REUSEPORT's connections, which then hang; exiting is the only failure the supervisor would otherwise see.
// So every serving worker is asked a ping each round: one that missed a round is reported not ready (its callers
// stall), one that missed the kill's worth of rounds is killed, and the restart path brings a new one.
// Silence is counted in the primary's own rounds, not in clock time: when the whole pod was frozen (a cgroup
// freeze, a paused container, a suspended VM) the primary's first round after it wakes finds every ping late, yet
// the answers are already waiting to be read, and a clock step must not kill healthy workers either.
// Pure: the pool sends, receives and kills; this only counts.

export interface HeartbeatTimes {
  /** How often a serving worker is pinged; a ping still unanswered at the next round makes it not ready. */
  readonly periodMs: number;
  /** Silence this long (in rounds: this ÷ periodMs, rounded up) kills the worker; it is then restarted. */
  readonly killAfterMs: number;
}

/** A worker answers within milliseconds; five seconds of silence is not a GC pause or a busy loop, but a fault. */
export const DEFAULT_HEARTBEAT: HeartbeatTimes = { periodMs: 5_000, killAfterMs: 30_000 };

export type HeartbeatVerdict = { readonly kind: 'answering' } | { readonly kind: 'silent'; readonly forMs: number } | { readonly kind: 'hung'; readonly forMs: number };

/** What a round asks of the pool for one worker. */
export type HeartbeatAction = 'ping' | 'wait' | 'kill';

/** One worker slot's pings: whether one is outstanding, since when, and how many rounds it has missed. */
export class WorkerHeartbeat {
  readonly #killRounds: number;
  #sentAtMs: number | null = null;
  #missed = 0;

  constructor(readonly times: HeartbeatTimes) {
    this.#killRounds = Math.max(1, Math.ceil(times.killAfterMs / times.periodMs));
  }

  /** A new process in the slot: nothing outstanding. */
  reset(): void {
    this.#sentAtMs = null;
    this.#missed = 0;
  }

  /** One heartbeat round: ping when none is outstanding, else count the miss. */
  round(nowMs: number): HeartbeatAction {
    if (this.#sentAtMs === null) {
      this.#sentAtMs = nowMs;
      return 'ping';
    }
    this.#missed++;
    return this.#missed >= this.#killRounds ? 'kill' : 'wait';
  }

  answered(): void {
    this.reset();
  }

  /** Time since the outstanding ping went (0 when none is outstanding). */
  silentForMs(nowMs: number): number {
    return this.#sentAtMs === null ? 0 : Math.max(0, nowMs - this.#sentAtMs);
  }

  verdict(nowMs: number): HeartbeatVerdict {
    if (this.#missed === 0) return { kind: 'answering' };
    const forMs = this.silentForMs(nowMs);
    return this.#missed >= this.#killRounds ? { kind: 'hung', forMs } : { kind: 'silent', forMs };
  }
}
