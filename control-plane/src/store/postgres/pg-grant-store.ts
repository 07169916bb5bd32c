// Break-glass grants in PostgreSQL. Every replica sees the same grants; the expiry of each is audited once in
// the whole fleet: markExpiryAudited flips the flag in one conditional UPDATE and only the flipper gets true.
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import type { GrantStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';
import { type GrantRow as Row, grantFromRow as fromRow } from '../store-rows.js';

const COLUMNS = 'id, to_pattern, from_json, reason, created_by, created_at_ms, expires_at_ms';

export class PgGrantStore implements GrantStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async add(g: BreakGlassGrant): Promise<void> {
    await this.#db.query(`INSERT INTO break_glass (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      g.id,
      g.to,
      JSON.stringify(g.from),
      g.reason,
      g.createdBy ?? '',
      g.createdAtMs ?? 0,
      g.expiresAtMs,
    ]);
  }

  async active(nowMs: number): Promise<BreakGlassGrant[]> {
    return (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM break_glass WHERE expires_at_ms > $1 ORDER BY id`, [nowMs])).rows.map(fromRow);
  }

  async expiredUnaudited(nowMs: number): Promise<BreakGlassGrant[]> {
    const sql = `SELECT ${COLUMNS} FROM break_glass WHERE expires_at_ms <= $1 AND NOT expiry_audited ORDER BY expires_at_ms, id`;
    return (await this.#db.query<Row>(sql, [nowMs])).rows.map(fromRow);
  }

  async markExpiryAudited(id: string): Promise<boolean> {
    return (await this.#db.query('UPDATE break_glass SET expiry_audited = TRUE WHERE id = $1 AND NOT expiry_audited', [id])).rowCount === 1;
  }
}
