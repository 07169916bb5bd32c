// Audit repair at start: a kill between a CA commit and its audit line leaves the committed state ahead of the
// trail, so every authority whose state the trail does not show gets a `ca.recovered` line.
import type { AuditLog } from '../store/store-contract.js';

/** The authority state each audited CA event leaves behind. */
const CA_EVENT_STATE: Readonly<Record<string, string>> = { 'ca.created': 'active', 'ca.prepared': 'prepared', 'ca.activated': 'active', 'ca.retired': 'retired', 'ca.removed': 'removed' };

/**
 * A kill between a CA commit and its audit line leaves the committed state ahead of the trail: at start, record
 * a `ca.recovered` line for every authority whose state the trail does not show.
 */
export async function auditCaRecovery(audit: AuditLog, authorities: readonly { record: { id: string; state: string } }[], nowMs: number): Promise<void> {
  const trail = new Map<string, string>();
  for (const e of (await audit.recent('ca.', 10_000)).reverse()) {
    const state = e['event'] === 'ca.recovered' ? e['state'] : CA_EVENT_STATE[String(e['event'])];
    if (typeof state === 'string' && typeof e['authority'] === 'string') trail.set(e['authority'], state);
  }
  const now = new Map(authorities.map((a) => [a.record.id, a.record.state]));
  for (const id of new Set([...trail.keys(), ...now.keys()])) {
    const state = now.get(id) ?? 'removed';
    const audited = trail.get(id);
    if (audited !== state) audit.record(nowMs, { event: 'ca.recovered', result: 'ok', caller: 'control-plane', authority: id, state, ...(audited ? { audited } : {}) });
  }
}

