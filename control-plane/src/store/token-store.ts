// Join tokens, stored only as SHA-256 hashes: each is bound to one SPIFFE ID, expires, can be revoked while unused,
// and is spent by one atomic conditional update (so two concurrent uses, or a use and a revoke, cannot both win).
import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface TokenRecord {
  readonly hash: string;
  readonly spiffeId: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly usedAtMs: number | null;
  readonly revokedAtMs: number | null;
}

interface Row {
  hash: string;
  spiffe_id: string;
  created_at_ms: number;
  expires_at_ms: number;
  used_at_ms: number | null;
  revoked_at_ms: number | null;
}

const fromRow = (r: Row): TokenRecord => ({ hash: r.hash, spiffeId: r.spiffe_id, createdAtMs: r.created_at_ms, expiresAtMs: r.expires_at_ms, usedAtMs: r.used_at_ms, revokedAtMs: r.revoked_at_ms });

/** The short token id that audit lines show ("join_token:<id>"): the first 12 hex digits of the hash. */
export function tokenIdOf(hash: string): string {
  return hash.slice(0, 12);
}

/** 256 random bits, base64url: what the operator hands to a workload. */
export function newJoinToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class TokenStore {
  readonly #insert: StatementSync;
  readonly #get: StatementSync;
  readonly #spend: StatementSync;
  readonly #prune: StatementSync;
  readonly #byPrefix: StatementSync;
  readonly #revoke: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)');
    this.#get = db.prepare('SELECT * FROM join_tokens WHERE hash = ?');
    this.#spend = db.prepare('UPDATE join_tokens SET used_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > ?');
    this.#byPrefix = db.prepare("SELECT * FROM join_tokens WHERE hash >= ? AND hash < ? || 'g' LIMIT 2");
    this.#revoke = db.prepare('UPDATE join_tokens SET revoked_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND revoked_at_ms IS NULL');
    this.#prune = db.prepare('DELETE FROM join_tokens WHERE expires_at_ms < ?');
  }

  create(token: string, spiffeId: string, nowMs: number, ttlMs: number): TokenRecord {
    const rec = { hash: hashToken(token), spiffeId, createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs, usedAtMs: null, revokedAtMs: null };
    this.#insert.run(rec.hash, rec.spiffeId, rec.createdAtMs, rec.expiresAtMs);
    return rec;
  }

  find(hash: string): TokenRecord | undefined {
    const r = this.#get.get(hash) as Row | undefined;
    return r && fromRow(r);
  }

  /** The tokens whose hash starts with `prefix` (lower-case hex); at most two, enough to tell ambiguity. */
  findByPrefix(prefix: string): TokenRecord[] {
    return (this.#byPrefix.all(prefix, prefix) as unknown as Row[]).map(fromRow);
  }

  /** Marks an unused token revoked; false when it was used or revoked already. */
  revoke(hash: string, nowMs: number): boolean {
    return Number(this.#revoke.run(nowMs, hash).changes) === 1;
  }

  /** Marks the token used; false when it was already used, revoked or has expired meanwhile. */
  spend(hash: string, nowMs: number): boolean {
    return Number(this.#spend.run(nowMs, hash, nowMs).changes) === 1;
  }

  /** Forgets tokens expired for longer than `keepMs` (their reuse is then reported as unknown). */
  prune(nowMs: number, keepMs: number): number {
    return Number(this.#prune.run(nowMs - keepMs).changes);
  }
}
