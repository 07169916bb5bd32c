// Readiness as named conditions: /ready answers with the reason of the first condition that does not hold. The
// life-cycle phase comes first (starting, shutting down), then what must stay true while serving (own SVID live, a
// store that takes writes, a policy set loaded from the policy directory).

import type { Clock } from '../../../common/clock.js';

export interface ReadinessCondition {
  readonly name: string;
  /** null while the condition holds, otherwise why the control plane is not ready. */
  check(): string | null;
}

type Phase = 'starting' | 'serving' | 'closing';

const PHASE_REASON: Readonly<Record<Phase, string | null>> = { starting: 'starting', serving: null, closing: 'shutting down' };

export class Readiness {
  readonly #conditions: readonly ReadinessCondition[];
  #phase: Phase = 'starting';

  constructor(conditions: readonly ReadinessCondition[]) {
    this.#conditions = conditions;
  }

  /** Everything is started: the conditions decide from now on. */
  serving(): void {
    if (this.#phase === 'starting') this.#phase = 'serving';
  }

  /** Shutting down: not ready again, whatever the conditions say. */
  closing(): void {
    this.#phase = 'closing';
  }

  readonly notReadyReason = (): string | null => {
    const phase = PHASE_REASON[this.#phase];
    if (phase !== null) return phase;
    for (const c of this.#conditions) {
      const reason = c.check();
      if (reason !== null) return reason;
    }
    return null;
  };
}

/** The control plane's own SVID is present and not expired (it serves gRPC with it). */
export function ownSvidLive(current: () => { readonly notAfterMs: number } | undefined, clock: Clock): ReadinessCondition {
  return {
    name: 'own-svid-live',
    check: () => {
      const s = current();
      return s && s.notAfterMs > clock.nowMs() ? null : 'the control plane SVID has expired';
    },
  };
}

/** The store takes writes: not after a fault that says it cannot (full, read-only, I/O, damaged, unreachable). */
export function storeWritable(health: { notReadyReason(): string | null }): ReadinessCondition {
  return { name: 'store-writable', check: () => health.notReadyReason() };
}

/**
 * The policy directory has given a whole set (policies.dir configured). Until it has (a file refused at start),
 * this replica would send proxies no policy while another, started before the bad file, sends the last good set:
 * not ready, so a rollout stops and the replica takes no traffic until the directory loads.
 */
export function policySetLoaded(source: { readonly policies: readonly unknown[] | undefined }, dir: string): ReadinessCondition {
  return { name: 'policies-loaded', check: () => (source.policies === undefined ? `no policy set loaded from ${dir} yet (a file refused, or the directory missing or unreadable: see the log)` : null) };
}
