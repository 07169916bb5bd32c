// Break-glass grants: an operator opens a time-bounded allow for named callers; it is validated, stored,
// audited and published; a short wall-clock tick expires it (audited once, published without it).
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { compileIdPattern } from '../../../common/spiffe/match.js';
import type { AuditLog } from '../store/audit-log.js';
import type { GrantStore } from '../store/grant-store.js';

export interface BreakGlassRequest {
  readonly to: string;
  readonly from: readonly string[];
  readonly durationMs: number;
  readonly reason: string;
  readonly createdBy: string;
}

/** The longest grant an operator can open at once (open another to extend). */
export const MAX_BREAK_GLASS_MS = 24 * 3_600_000;

function invalid(message: string, field: string): TesseraError {
  return new TesseraError('TESSERA_ERR_BREAK_GLASS_INVALID', message, { field });
}

function checkPattern(p: unknown, field: string): string {
  if (typeof p !== 'string' || p === '') throw invalid(`${field} must be a SPIFFE ID pattern`, field);
  try {
    compileIdPattern(p);
  } catch (e) {
    throw invalid(`${field} "${p}" is not a SPIFFE ID pattern: ${(e as Error).message}`, field);
  }
  return p;
}

export class BreakGlass {
  readonly #store: GrantStore;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #onChange: () => void;

  constructor(store: GrantStore, audit: AuditLog, clock: Clock, onChange: () => void) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = clock;
    this.#onChange = onChange;
  }

  open(req: BreakGlassRequest): BreakGlassGrant {
    const to = checkPattern(req.to, 'to');
    if (!Array.isArray(req.from) || req.from.length === 0) throw invalid('from needs at least one SPIFFE ID pattern', 'from');
    const from = req.from.map((f) => checkPattern(f, 'from'));
    if (!Number.isFinite(req.durationMs) || req.durationMs <= 0 || req.durationMs > MAX_BREAK_GLASS_MS) {
      throw invalid(`the duration must be between 1 ms and ${MAX_BREAK_GLASS_MS / 3_600_000}h`, 'for');
    }
    const reason = typeof req.reason === 'string' ? req.reason.trim() : '';
    if (reason === '' || reason.length > 1000) throw invalid('a reason (1-1000 characters) is required', 'reason');
    const now = this.#clock.nowMs();
    const grant: BreakGlassGrant = {
      id: `bg-${randomBytes(5).toString('hex')}`,
      to,
      from,
      expiresAtMs: now + req.durationMs,
      reason,
      createdBy: String(req.createdBy ?? '').slice(0, 200) || 'unknown',
      createdAtMs: now,
    };
    this.#store.add(grant);
    this.#audit.record(now, { event: 'break_glass.opened', result: 'ok', caller: 'admin.sock', grant: grant.id, to, from, reason, createdBy: grant.createdBy, expiresAt: new Date(grant.expiresAtMs).toISOString() });
    this.#onChange();
    return grant;
  }

  active(): BreakGlassGrant[] {
    return this.#store.active(this.#clock.nowMs());
  }

  /** The tick: audits and unpublishes grants whose time has come. Returns how many expired. */
  expire(): number {
    const now = this.#clock.nowMs();
    const due = this.#store.expiredUnaudited(now);
    for (const g of due) {
      this.#audit.record(now, { event: 'break_glass.expired', result: 'ok', caller: 'control-plane', grant: g.id, to: g.to, from: g.from, expiresAt: new Date(g.expiresAtMs).toISOString() });
      this.#store.markExpiryAudited(g.id);
    }
    if (due.length > 0) this.#onChange();
    return due.length;
  }
}
