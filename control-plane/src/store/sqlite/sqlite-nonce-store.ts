// Spent TPM attestation nonces and their seal key in SQLite. Spending is one conditional INSERT (ON CONFLICT DO
// NOTHING): of two requests with the same nonce exactly one inserts the row. The seal key sits in the meta table,
// inserted once (the first writer's stays) and read back.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { NONCE_SEAL_KEY, type NonceStore } from '../store-contract.js';

export class SqliteNonceStore implements NonceStore {
  readonly #spend: StatementSync;
  readonly #prune: StatementSync;
  readonly #putKey: StatementSync;
  readonly #getKey: StatementSync;

  constructor(db: DatabaseSync) {
    this.#spend = db.prepare('INSERT INTO tpm_nonces (id, expires_at_ms) VALUES (?, ?) ON CONFLICT (id) DO NOTHING');
    this.#prune = db.prepare('DELETE FROM tpm_nonces WHERE expires_at_ms <= ?');
    this.#putKey = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING');
    this.#getKey = db.prepare('SELECT value FROM meta WHERE key = ?');
  }

  async spendOnce(id: string, expiresAtMs: number): Promise<boolean> {
    return Number(this.#spend.run(id, expiresAtMs).changes) === 1;
  }

  async prune(nowMs: number): Promise<number> {
    return Number(this.#prune.run(nowMs).changes);
  }

  async sealKey(candidate: Uint8Array): Promise<Buffer> {
    this.#putKey.run(NONCE_SEAL_KEY, Buffer.from(candidate).toString('hex'));
    return Buffer.from((this.#getKey.get(NONCE_SEAL_KEY) as { value: string }).value, 'hex');
  }
}
