// Join tokens in PostgreSQL, stored only as SHA-256 hashes. A token is spent only together with the SVID it pays
// for (PgInventoryStore.recordWithToken: one conditional UPDATE and the insert, one statement); revoking is one
// conditional UPDATE too, and the row lock makes a revoke racing a spend re-check after the winner commits.
import { hashToken } from '../join-token.js';
import type { TokenRecord, TokenStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';
import { type TokenRow as Row, tokenFromRow as fromRow } from '../store-rows.js';

const COLUMNS = 'hash, spiffe_id, created_at_ms, expires_at_ms, used_at_ms, revoked_at_ms';

export class PgTokenStore implements TokenStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async create(token: string, spiffeId: string, nowMs: number, ttlMs: number): Promise<TokenRecord> {
    const rec = { hash: hashToken(token), spiffeId, createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs, usedAtMs: null, revokedAtMs: null };
    await this.#db.query('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)', [rec.hash, rec.spiffeId, rec.createdAtMs, rec.expiresAtMs]);
    return rec;
  }

  async find(hash: string): Promise<TokenRecord | undefined> {
    const r = (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM join_tokens WHERE hash = $1`, [hash])).rows[0];
    return r && fromRow(r);
  }

  async findByPrefix(prefix: string): Promise<TokenRecord[]> {
    // A range on the "C"-collated key (bytewise, index-backed): 'g' sorts after every lower-case hex digit.
    const rows = (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM join_tokens WHERE hash >= $1 AND hash < $2 ORDER BY hash LIMIT 2`, [prefix, `${prefix}g`])).rows;
    return rows.map(fromRow);
  }

  async revoke(hash: string, nowMs: number): Promise<boolean> {
    const r = await this.#db.query('UPDATE join_tokens SET revoked_at_ms = $1 WHERE hash = $2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL', [nowMs, hash]);
    return r.rowCount === 1;
  }

  async prune(nowMs: number, keepMs: number): Promise<number> {
    return (await this.#db.query('DELETE FROM join_tokens WHERE expires_at_ms < $1', [nowMs - keepMs])).rowCount;
  }
}
