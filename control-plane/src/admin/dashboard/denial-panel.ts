// The dashboard's denials panel: authorization denials and audit-mode would-denies per policy, summed over the
// proxies' latest reports (a sum past 2^53 is shown as Number.MAX_SAFE_INTEGER, marked saturated: beyond it a JS
// number is no longer exact). Every field of a report is the proxy's word, so (audit 16b F1): a policy this control
// plane does not distribute is folded into one row per reporting SPIFFE ID (invented names cannot add rows), a
// proxy's "last seen" is clamped to when the report arrived (a date in 9999 cannot sort first), and the panel is cut.
import { FOLDED_POLICIES, NO_POLICY } from '../../../../common/contract/config-v1.js';
import type { ProxyReport } from '../../store/store-contract.js';
import { compare } from './proxy-panel.js';

/** The policy label of a row folding the policies this control plane does not distribute. */
export const UNKNOWN_POLICIES = '?';

export interface DenialRow {
  /** The policy; UNKNOWN_POLICIES for a row folding one SPIFFE ID's denials under policies not distributed here. */
  readonly policy: string;
  /** deny: refused; audit: an audit-mode policy would have refused (the request went through). */
  readonly outcome: 'deny' | 'audit';
  /** Summed over the reporting proxies (each counts since it started), at most Number.MAX_SAFE_INTEGER. */
  readonly count: number;
  /** The sum reached Number.MAX_SAFE_INTEGER and stopped there (the real sum is at least that). */
  readonly saturated: boolean;
  /** The latest the proxies say, never later than the control plane received their report. */
  readonly lastAtMs: number;
  readonly lastCaller: string;
  /** "<spiffeId> <instance>" of each proxy that reported it. */
  readonly reportedBy: readonly string[];
  /** For a folded row (policy UNKNOWN_POLICIES): the reporting SPIFFE ID; null otherwise. */
  readonly unknownFrom: string | null;
}

export interface DenialPanel {
  readonly rows: DenialRow[];
  /** Rows left out by the cut. */
  readonly left: number;
}

/**
 * Denials per policy and outcome over `reports` (give the latest of each proxy), most recent first, at most `max`
 * rows: rows of known policies are kept before folded ones. `known` holds the names this control plane distributes
 * ("" and "*" are always known: the proxy's own default action and its own fold).
 */
export function denialRows(reports: readonly ProxyReport[], known: ReadonlySet<string>, max: number): DenialPanel {
  type Acc = { policy: string; outcome: 'deny' | 'audit'; count: number; saturated: boolean; lastAtMs: number; lastCaller: string; reportedBy: Set<string>; unknownFrom: string | null };
  const rows = new Map<string, Acc>();
  for (const r of reports) {
    for (const d of r.denials) {
      const isKnown = d.policy === NO_POLICY || d.policy === FOLDED_POLICIES || known.has(d.policy);
      const key = isKnown ? `p\n${d.policy}\n${d.outcome}` : `u\n${r.spiffeId}\n${d.outcome}`;
      const row = rows.get(key) ?? { policy: isKnown ? d.policy : UNKNOWN_POLICIES, outcome: d.outcome, count: 0, saturated: false, lastAtMs: 0, lastCaller: '', reportedBy: new Set<string>(), unknownFrom: isKnown ? null : r.spiffeId };
      // Each count is a safe integer (report-service.ts); their sum need not be.
      const sum = row.count + d.count;
      row.saturated ||= sum > Number.MAX_SAFE_INTEGER;
      row.count = Math.min(sum, Number.MAX_SAFE_INTEGER);
      const atMs = Math.min(d.lastAtMs, r.receivedAtMs);
      if (atMs >= row.lastAtMs) {
        row.lastAtMs = atMs;
        row.lastCaller = d.lastCaller;
      }
      row.reportedBy.add(`${r.spiffeId} ${r.instance}`);
      rows.set(key, row);
    }
  }
  const all = [...rows.values()].map((r): DenialRow => ({ ...r, reportedBy: [...r.reportedBy].sort() }));
  const byTime = (a: DenialRow, b: DenialRow) => b.lastAtMs - a.lastAtMs || b.count - a.count || compare(a.policy, b.policy) || compare(a.unknownFrom ?? '', b.unknownFrom ?? '') || compare(a.outcome, b.outcome);
  const kept = [...all.filter((r) => r.unknownFrom === null).sort(byTime), ...all.filter((r) => r.unknownFrom !== null).sort(byTime)].slice(0, max);
  return { rows: kept.sort(byTime), left: all.length - kept.length };
}
