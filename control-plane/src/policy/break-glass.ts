// Break-glass grants: an operator opens a time-bounded allow for named callers; it is validated, stored,
// audited and published; a short wall-clock tick expires it (published without it, its expiry audited once, by
// whichever replica marks it first). The active grants are held in memory for the config snapshots: loaded at
// open, reloaded after a grant opened here and when another replica announces one.
import { randomBytes } from 'node:crypto';
import { hasControlCharacters, withoutControlCharacters } from '../../../common/text/control-characters.js';
import type { Clock } from '../../../common/clock.js';
import { TesseraError, describeError } from '../../../common/errors.js';
import type { BreakGlassGrant } from '../../../common/policy/policy-types.js';
import { compileIdPattern } from '../../../common/spiffe/match.js';
import type { AuditLog, GrantStore } from '../store/store-contract.js';
import { ReloadedList } from '../store/reloaded-list.js';

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
    throw invalid(`${field} "${p}" is not a SPIFFE ID pattern: ${describeError(e)}`, field);
  }
  return p;
}

export interface BreakGlassOptions {
  readonly store: GrantStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** The active grants changed (opened, expired, or changed by another replica): publish a new snapshot. */
  readonly onChange: () => void;
  /** Called after a grant opened here, so other replicas reload (absent: nobody else to tell). */
  readonly announce?: () => void;
}

export class BreakGlass {
  readonly #o: BreakGlassOptions;
  readonly #grants: ReloadedList<BreakGlassGrant>;

  private constructor(o: BreakGlassOptions) {
    this.#o = o;
    this.#grants = new ReloadedList(
      () => o.store.active(o.clock.nowMs()),
      (_grants, first) => {
        if (!first) o.onChange();
      },
    );
  }

  /** Loads the active grants before the first snapshot is built. */
  static async open(o: BreakGlassOptions): Promise<BreakGlass> {
    const bg = new BreakGlass(o);
    await bg.reload();
    return bg;
  }

  /** Reads the active grants again; a different set replaces the one in memory and is published. */
  reload(): Promise<void> {
    return this.#grants.reload();
  }

  async open(req: BreakGlassRequest): Promise<BreakGlassGrant> {
    const to = checkPattern(req.to, 'to');
    if (!Array.isArray(req.from) || req.from.length === 0) throw invalid('from needs at least one SPIFFE ID pattern', 'from');
    const from = req.from.map((f) => checkPattern(f, 'from'));
    if (!Number.isFinite(req.durationMs) || req.durationMs <= 0 || req.durationMs > MAX_BREAK_GLASS_MS) {
      throw invalid(`the duration must be between 1 ms and ${MAX_BREAK_GLASS_MS / 3_600_000}h`, 'for');
    }
    const reason = typeof req.reason === 'string' ? req.reason.trim() : '';
    if (reason === '' || reason.length > 1000) throw invalid('a reason (1-1000 characters) is required', 'reason');
    if (hasControlCharacters(reason)) throw invalid('the reason holds control characters', 'reason');
    const now = this.#o.clock.nowMs();
    const grant: BreakGlassGrant = {
      id: `bg-${randomBytes(5).toString('hex')}`,
      to,
      from,
      expiresAtMs: now + req.durationMs,
      reason,
      createdBy: withoutControlCharacters(String(req.createdBy ?? '')).slice(0, 200) || 'unknown',
      createdAtMs: now,
    };
    const { store, audit } = this.#o;
    await store.add(grant);
    audit.record(now, { event: 'break_glass.opened', result: 'ok', caller: 'admin.sock', grant: grant.id, to, from, reason, createdBy: grant.createdBy, expiresAt: new Date(grant.expiresAtMs).toISOString() });
    try {
      await this.reload();
    } finally {
      this.#o.announce?.();
    }
    return grant;
  }

  /** The unexpired grants now. */
  active(): BreakGlassGrant[] {
    const now = this.#o.clock.nowMs();
    return this.#grants.items.filter((g) => g.expiresAtMs > now);
  }

  /**
   * The tick: grants whose time has come are unpublished here; the expiry of each is audited by the one caller
   * (of any replica) that marks it. Returns how many expiries this call audited.
   */
  async expire(): Promise<number> {
    const { store, audit, clock } = this.#o;
    const now = clock.nowMs();
    if (this.#grants.keep((g) => g.expiresAtMs > now)) this.#o.onChange();
    let audited = 0;
    for (const g of await store.expiredUnaudited(now)) {
      if (!(await store.markExpiryAudited(g.id))) continue;
      audit.record(now, { event: 'break_glass.expired', result: 'ok', caller: 'control-plane', grant: g.id, to: g.to, from: g.from, expiresAt: new Date(g.expiresAtMs).toISOString() });
      audited++;
    }
    return audited;
  }
}
