// Break-glass grants in SQLite: stored when an operator opens one, listed while unexpired, and marked once their
// expiry has been audited (so a restart neither forgets a grant nor audits an expiry twice).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import type { GrantStore } from '../store-contract.js';
import { type GrantRow as Row, grantFromRow as fromRow } from '../store-rows.js';

export class SqliteGrantStore implements GrantStore {
  readonly #insert: StatementSync;
  readonly #active: StatementSync;
  readonly #due: StatementSync;
  readonly #mark: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO break_glass (id, to_pattern, from_json, reason, created_by, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#active = db.prepare('SELECT * FROM break_glass WHERE expires_at_ms > ? ORDER BY id');
    this.#due = db.prepare('SELECT * FROM break_glass WHERE expires_at_ms <= ? AND expiry_audited = 0 ORDER BY expires_at_ms, id');
    this.#mark = db.prepare('UPDATE break_glass SET expiry_audited = 1 WHERE id = ? AND expiry_audited = 0');
  }

  async add(g: BreakGlassGrant): Promise<void> {
    this.#insert.run(g.id, g.to, JSON.stringify(g.from), g.reason, g.createdBy ?? '', g.createdAtMs ?? 0, g.expiresAtMs);
  }

  async active(nowMs: number): Promise<BreakGlassGrant[]> {
    return (this.#active.all(nowMs) as unknown as Row[]).map(fromRow);
  }

  async expiredUnaudited(nowMs: number): Promise<BreakGlassGrant[]> {
    return (this.#due.all(nowMs) as unknown as Row[]).map(fromRow);
  }

  async markExpiryAudited(id: string): Promise<boolean> {
    return Number(this.#mark.run(id).changes) === 1;
  }
}
