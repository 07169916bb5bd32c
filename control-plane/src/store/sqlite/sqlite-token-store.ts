// Join tokens in SQLite, stored only as SHA-256 hashes: each is bound to one SPIFFE ID, expires, can be revoked
// while unused, and is spent only together with the SVID it pays for (SqliteInventoryStore.recordWithToken: one
// conditional update in the insert's transaction, so two concurrent uses, or a use and a revoke, cannot both win).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { hashToken } from '../join-token.js';
import type { TokenRecord, TokenStore } from '../store-contract.js';
import { type TokenRow as Row, tokenFromRow as fromRow } from '../store-rows.js';

export class SqliteTokenStore implements TokenStore {
  readonly #insert: StatementSync;
  readonly #get: StatementSync;
  readonly #prune: StatementSync;
  readonly #byPrefix: StatementSync;
  readonly #revoke: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)');
    this.#get = db.prepare('SELECT * FROM join_tokens WHERE hash = ?');
    this.#byPrefix = db.prepare("SELECT * FROM join_tokens WHERE hash >= ? AND hash < ? || 'g' LIMIT 2");
    this.#revoke = db.prepare('UPDATE join_tokens SET revoked_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND revoked_at_ms IS NULL');
    this.#prune = db.prepare('DELETE FROM join_tokens WHERE expires_at_ms < ?');
  }

  async create(token: string, spiffeId: string, nowMs: number, ttlMs: number): Promise<TokenRecord> {
    const rec = { hash: hashToken(token), spiffeId, createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs, usedAtMs: null, revokedAtMs: null };
    this.#insert.run(rec.hash, rec.spiffeId, rec.createdAtMs, rec.expiresAtMs);
    return rec;
  }

  async find(hash: string): Promise<TokenRecord | undefined> {
    const r = this.#get.get(hash) as Row | undefined;
    return r && fromRow(r);
  }

  async findByPrefix(prefix: string): Promise<TokenRecord[]> {
    return (this.#byPrefix.all(prefix, prefix) as unknown as Row[]).map(fromRow);
  }

  async revoke(hash: string, nowMs: number): Promise<boolean> {
    return Number(this.#revoke.run(nowMs, hash).changes) === 1;
  }

  /** Expired for longer than `keepMs`: forgotten (their reuse is then reported as unknown). */
  async prune(nowMs: number, keepMs: number): Promise<number> {
    return Number(this.#prune.run(nowMs - keepMs).changes);
  }
}
