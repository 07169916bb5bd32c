// Operator bans in PostgreSQL: a ban made through any replica is refused by every replica (each reloads when the
// change feed announces "revocations"), and stays until lifted.
import type { Ban, BanKind, RevocationStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';
import { type BanRow as Row, banFromRow as fromRow } from '../store-rows.js';

const COLUMNS = 'kind, value, reason, created_by, created_at_ms, not_after_ms';

export class PgRevocationStore implements RevocationStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async add(b: Ban): Promise<boolean> {
    const sql = `INSERT INTO revocations (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, value) DO NOTHING`;
    return (await this.#db.query(sql, [b.kind, b.value, b.reason, b.createdBy, b.createdAtMs, b.notAfterMs])).rowCount === 1;
  }

  async remove(kind: BanKind, value: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM revocations WHERE kind = $1 AND value = $2', [kind, value])).rowCount === 1;
  }

  async find(kind: BanKind, value: string): Promise<Ban | undefined> {
    const r = (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM revocations WHERE kind = $1 AND value = $2`, [kind, value])).rows[0];
    return r && fromRow(r);
  }

  async all(): Promise<Ban[]> {
    return (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM revocations ORDER BY kind, value`)).rows.map(fromRow);
  }

  async live(nowMs: number): Promise<Ban[]> {
    return (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM revocations WHERE not_after_ms IS NULL OR not_after_ms > $1 ORDER BY kind, value`, [nowMs])).rows.map(fromRow);
  }

  /** Two primary-key lookups: cheap enough to ask before every signature. */
  async matching(spiffeId: string, serial: string | undefined): Promise<Ban[]> {
    const sql = `SELECT ${COLUMNS} FROM revocations WHERE (kind = 'spiffe_id' AND value = $1) OR (kind = 'serial' AND value = $2) ORDER BY kind, value`;
    return (await this.#db.query<Row>(sql, [spiffeId, serial ?? null])).rows.map(fromRow);
  }
}
