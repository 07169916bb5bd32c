// The audit trail as the network-facing refusal paths write it: every refusal is counted in metrics, but the rows
// one subject (a SPIFFE ID, else a peer address) can make the control plane write are rate-limited, and rows of
// callers without a proven ID share one budget too. A caller refused in a loop (a bad token, a banned SVID, a
// Register stream of foreign IDs) otherwise turned each small request into a disk write; a suppressed row is
// counted, and the subject's next written row says how many were left out ("suppressed").
import type { Clock } from '../../../common/clock.js';
import { peerHost } from '../discovery/registration-service.js';
import { type RateLimit, RateLimiter } from '../issuance/rate-limiter.js';
import type { AuditEvent, AuditLog } from '../store/store-contract.js';

/** Refusal events any network caller can cause; other rows (operator actions, CA changes, issuances) are never held back. */
export const BUDGETED_EVENTS: ReadonlySet<string> = new Set(['svid.refused', 'jwt_svid.refused', 'config.watch_refused', 'discovery.watch_refused', 'discovery.register_refused', 'registration.refused']);

export interface RefusalAuditLimits {
  /** Rows per event, code and subject. */
  readonly perSubject: RateLimit;
  /** Rows of subjects without a proven SPIFFE ID, all together (peer addresses are cheap to change). */
  readonly anonymous: RateLimit;
}

/** A workload retrying once a second is audited in full; a flood writes at most ~1 row a second per subject. */
export const DEFAULT_REFUSAL_AUDIT_LIMITS: RefusalAuditLimits = Object.freeze({ perSubject: { burst: 20, perMinute: 60 }, anonymous: { burst: 200, perMinute: 600 } });
/** Subjects remembered (buckets, and counts of rows left out) before full buckets are swept. */
const MAX_SUBJECTS = 10_000;

/** `audit` with the refusal rows of BUDGETED_EVENTS held to `limits`; `onSuppressed` counts each row left out. */
export function budgetedRefusals(audit: AuditLog, clock: Clock, onSuppressed: (event: string) => void, limits: RefusalAuditLimits = DEFAULT_REFUSAL_AUDIT_LIMITS): AuditLog {
  const perSubject = new RateLimiter(limits.perSubject, clock);
  const anonymous = new RateLimiter(limits.anonymous, clock);
  const suppressed = new Map<string, number>();
  const record = (atMs: number, e: AuditEvent): void => {
    if (e.result !== 'refused' || !BUDGETED_EVENTS.has(e.event)) {
      audit.record(atMs, e);
      return;
    }
    const proven = typeof e.spiffeId === 'string' && e.spiffeId !== '';
    // Per code too: each kind of refusal of a subject stays on the record (the codes are a fixed, short list).
    const key = `${e.event} ${String(e.code ?? '')} ${proven ? e.spiffeId : (peerHost(String(e.caller ?? '')) ?? String(e.caller ?? '').slice(0, 200))}`;
    if (perSubject.size > MAX_SUBJECTS) perSubject.sweep();
    if (perSubject.take(key) && (proven || anonymous.take(''))) {
      const left = suppressed.get(key);
      suppressed.delete(key);
      audit.record(atMs, left ? { ...e, suppressed: left } : e);
      return;
    }
    onSuppressed(e.event);
    // Bounded too: past MAX_SUBJECTS a new subject's rows left out are only counted in metrics.
    if (suppressed.has(key) || suppressed.size < MAX_SUBJECTS) suppressed.set(key, (suppressed.get(key) ?? 0) + 1);
  };
  return { record, recent: (prefix, limit) => audit.recent(prefix, limit), flush: () => audit.flush(), prune: (before, max) => audit.prune(before, max) };
}
