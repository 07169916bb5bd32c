// Spent TPM attestation nonces and their seal key in PostgreSQL, shared by every replica: a challenge answered by
// one replica can be spent on another, and only once. Spending is one INSERT .. ON CONFLICT DO NOTHING: under
// concurrent spends of one nonce (on any replicas) the unique index lets exactly one insert. The seal key sits in
// the meta table, inserted once (the first replica's stays) and read back by all.
import { NONCE_SEAL_KEY, type NonceStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';

export class PgNonceStore implements NonceStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async spendOnce(id: string, expiresAtMs: number): Promise<boolean> {
    const r = await this.#db.query('INSERT INTO tpm_nonces (id, expires_at_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, expiresAtMs]);
    return r.rowCount === 1;
  }

  async prune(nowMs: number): Promise<number> {
    return (await this.#db.query('DELETE FROM tpm_nonces WHERE expires_at_ms <= $1', [nowMs])).rowCount;
  }

  async sealKey(candidate: Uint8Array): Promise<Buffer> {
    // Insert-if-absent, then read: whichever replica inserted first, every one reads the same key.
    await this.#db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [NONCE_SEAL_KEY, Buffer.from(candidate).toString('hex')]);
    const row = (await this.#db.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [NONCE_SEAL_KEY])).rows[0];
    return Buffer.from(row!.value, 'hex');
  }
}
