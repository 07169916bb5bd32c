// The control plane's readiness: its life-cycle phase comes first (starting, shutting down), then what must stay true
// while serving (a signing chain that has not ended, own SVID live, a store that takes writes, a policy set loaded
// from the policy directory, the endpoint sources synced once), as named conditions of the shared Readiness (common/readiness.ts: undefined when met).
import type { Clock } from '../../../common/clock.js';
import { type Condition, Readiness } from '../../../common/readiness.js';

export interface ReadinessCondition {
  readonly name: string;
  /** undefined while the condition holds, otherwise why the control plane is not ready. */
  readonly check: Condition;
}

type Phase = 'starting' | 'serving' | 'closing';

const PHASE_REASON: Readonly<Record<Phase, string | undefined>> = { starting: 'starting', serving: undefined, closing: 'shutting down' };

/** Not ready while starting and while shutting down, whatever the conditions say; between, the conditions decide. */
export class PhasedReadiness {
  readonly #readiness = new Readiness();
  #phase: Phase = 'starting';

  constructor(conditions: readonly ReadinessCondition[]) {
    this.#readiness.add('phase', () => PHASE_REASON[this.#phase]);
    for (const c of conditions) this.#readiness.add(c.name, c.check);
  }

  /** Everything is started: the conditions decide from now on. */
  serving(): void {
    if (this.#phase === 'starting') this.#phase = 'serving';
  }

  /** Shutting down: not ready again, whatever the conditions say. */
  closing(): void {
    this.#phase = 'closing';
  }

  readonly notReadyReason = (): string | undefined => this.#readiness.notReadyReason();
}

/**
 * The CA's signing chain has not ended: once its intermediate or its root expired nothing is issued and nothing new
 * verifies (the own SVID, capped at the chain's end, expires with it; this names the cause).
 */
export function signingChainLive(signer: () => { readonly notAfterMs: number; readonly endsWith: 'intermediate' | 'root' }, clock: Clock): ReadinessCondition {
  return {
    name: 'signing-chain-live',
    check: () => {
      const s = signer();
      return s.notAfterMs > clock.nowMs() ? undefined : `the CA's signing chain ended at ${new Date(s.notAfterMs).toISOString()} (its ${s.endsWith} expired): nothing is issued`;
    },
  };
}

/** The control plane's own SVID is present and not expired (it serves gRPC with it). */
export function ownSvidLive(current: () => { readonly notAfterMs: number } | undefined, clock: Clock): ReadinessCondition {
  return {
    name: 'own-svid-live',
    check: () => {
      const s = current();
      return s && s.notAfterMs > clock.nowMs() ? undefined : 'the control plane SVID has expired';
    },
  };
}

/** The store takes writes: not after a fault that says it cannot (full, read-only, I/O, damaged, unreachable). */
export function storeWritable(health: { notReadyReason(): string | undefined }): ReadinessCondition {
  return { name: 'store-writable', check: () => health.notReadyReason() };
}

/**
 * The policy directory has given a whole set (policies.dir configured). Until it has (a file refused at start),
 * this replica would send proxies no policy while another, started before the bad file, sends the last good set:
 * not ready, so a rollout stops and the replica takes no traffic until the directory loads.
 */
export function policySetLoaded(source: { readonly policies: readonly unknown[] | undefined }, dir: string): ReadinessCondition {
  return { name: 'policies-loaded', check: () => (source.policies === undefined ? `no policy set loaded from ${dir} yet (a file refused, or the directory missing or unreadable: see the log)` : undefined) };
}

/**
 * The endpoint sources have given their first view (or the wait for it timed out): until then this replica would
 * hand proxies services it has not listed yet, so a rollout waits for it as for istiod's caches.
 */
export function discoverySynced(notSyncedReason: () => string | undefined): ReadinessCondition {
  return { name: 'discovery-synced', check: notSyncedReason };
}
