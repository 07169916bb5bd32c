// Join tokens, stored only as SHA-256 hashes: each is bound to one SPIFFE ID, expires, and is spent by one
// atomic conditional update (so two concurrent uses cannot both succeed).
import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface TokenRecord {
  readonly hash: string;
  readonly spiffeId: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly usedAtMs: number | null;
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

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)');
    this.#get = db.prepare('SELECT hash, spiffe_id, created_at_ms, expires_at_ms, used_at_ms FROM join_tokens WHERE hash = ?');
    this.#spend = db.prepare('UPDATE join_tokens SET used_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND expires_at_ms > ?');
    this.#prune = db.prepare('DELETE FROM join_tokens WHERE expires_at_ms < ?');
  }

  create(token: string, spiffeId: string, nowMs: number, ttlMs: number): TokenRecord {
    const rec = { hash: hashToken(token), spiffeId, createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs, usedAtMs: null };
    this.#insert.run(rec.hash, rec.spiffeId, rec.createdAtMs, rec.expiresAtMs);
    return rec;
  }

  find(hash: string): TokenRecord | undefined {
    const r = this.#get.get(hash) as { hash: string; spiffe_id: string; created_at_ms: number; expires_at_ms: number; used_at_ms: number | null } | undefined;
    return r && { hash: r.hash, spiffeId: r.spiffe_id, createdAtMs: r.created_at_ms, expiresAtMs: r.expires_at_ms, usedAtMs: r.used_at_ms };
  }

  /** Marks the token used; false when it was already used or has expired meanwhile. */
  spend(hash: string, nowMs: number): boolean {
    return Number(this.#spend.run(nowMs, hash, nowMs).changes) === 1;
  }

  /** Forgets tokens expired for longer than `keepMs` (their reuse is then reported as unknown). */
  prune(nowMs: number, keepMs: number): number {
    return Number(this.#prune.run(nowMs - keepMs).changes);
  }
}
