// Jittered exponential backoff as a pure function: returns how long to wait, never sleeps.

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier?: number;
  /** Fraction of the delay randomised either way (0.2 = ±20 %). */
  readonly jitter?: number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * (opts.multiplier ?? 2) ** Math.max(0, attempt));
  const jitter = opts.jitter ?? 0.2;
  const spread = base * jitter * (2 * random() - 1);
  return Math.max(0, Math.min(opts.maxMs, Math.round(base + spread)));
}
