// Denials since the proxy started, per (deciding policy, outcome): how many, when the last one was and who asked.
// Fed by the one authorization gate (authorize.ts) on the deny path only, read by the fleet reporter. Bounded:
// beyond MAX_DENIAL_ROWS further pairs are folded into one row per outcome under FOLDED_POLICIES.
import { type DenialOutcome, FOLDED_POLICIES, NO_POLICY, REPORT_LIMITS } from '../../../common/contract/config-v1.js';
import { UNAUTHENTICATED } from '../../../common/policy/policy-types.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';

/** Distinct (policy, outcome) rows kept; the two folded rows come on top, so a report never passes the bound. */
export const MAX_DENIAL_ROWS = REPORT_LIMITS.denials - 2;

export interface DenialRow {
  /** The deciding policy's name; "" (NO_POLICY) when no single policy decided, "*" for folded rows. */
  readonly policy: string;
  readonly outcome: DenialOutcome;
  readonly count: number;
  readonly lastAtMs: number;
  /** A SPIFFE ID, or "unauthenticated". */
  readonly lastCaller: string;
}

/** One row, updated in place: a denial costs a map lookup and three writes, no allocation once the row exists. */
class Row {
  count = 0;
  lastAtMs = 0;
  /** Kept as the object the request carried; turned into text only when read. */
  lastCaller: SpiffeId | null = null;
  constructor(
    readonly policy: string,
    readonly outcome: DenialOutcome,
  ) {}
}

export class DenialTally {
  readonly #deny = new Map<string, Row>();
  readonly #audit = new Map<string, Row>();
  readonly #max: number;
  #rows = 0;

  constructor(maxRows = MAX_DENIAL_ROWS) {
    this.#max = maxRows;
  }

  /** One denial (`outcome` "deny") or audit-mode would-deny ("audit") decided by `policy` (null: none decided). */
  record(policy: string | null, outcome: DenialOutcome, caller: SpiffeId | null, nowMs: number): void {
    const table = outcome === 'deny' ? this.#deny : this.#audit;
    const name = policy ?? NO_POLICY;
    let row = table.get(name);
    if (row === undefined) {
      if (this.#rows >= this.#max) {
        row = table.get(FOLDED_POLICIES);
        if (row === undefined) {
          row = new Row(FOLDED_POLICIES, outcome);
          table.set(FOLDED_POLICIES, row);
        }
      } else {
        row = new Row(name, outcome);
        table.set(name, row);
        this.#rows++;
      }
    }
    row.count++;
    // Whole milliseconds: the listeners' clock reads finer, and this goes out as a uint64 (fleet report) and JSON.
    row.lastAtMs = Math.floor(nowMs);
    row.lastCaller = caller;
  }

  /** Every row now, denials first, each in the order it first appeared. */
  rows(): DenialRow[] {
    const out: DenialRow[] = [];
    for (const table of [this.#deny, this.#audit]) {
      for (const r of table.values()) out.push({ policy: r.policy, outcome: r.outcome, count: r.count, lastAtMs: r.lastAtMs, lastCaller: r.lastCaller?.toString() ?? UNAUTHENTICATED });
    }
    return out;
  }
}
