// The JWT-SVID signing keys every replica shares, in PostgreSQL: one versioned JSON document (the key list with each
// key's PEM) in jwt_keys_state. A commit is compare-and-swap on the version, like the CA's: a replica that read an
// older version gets TESSERA_ERR_CA_CONFLICT and reloads; with a fencing term it must also still lead.
import type { PgDatabase } from './pg-database.js';
import { checkFence, conflict } from './pg-authority-records.js';

export class PgJwtKeyRecords {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async load(): Promise<{ readonly state: unknown; readonly version: number } | null> {
    const row = (await this.#db.query<{ version: number; state_json: string }>('SELECT version, state_json FROM jwt_keys_state WHERE id = 1')).rows[0];
    return row ? { state: JSON.parse(row.state_json) as unknown, version: row.version } : null;
  }

  async version(): Promise<number | null> {
    return (await this.#db.query<{ version: number }>('SELECT version FROM jwt_keys_state WHERE id = 1')).rows[0]?.version ?? null;
  }

  /** Writes `state` as the next version if the committed one is still `expectedVersion` (null: none yet). */
  async commit(state: unknown, expectedVersion: number | null, fence?: { readonly term: number }): Promise<number> {
    const json = JSON.stringify(state);
    return this.#db.tx(async (q) => {
      if (fence) await checkFence(q, fence.term);
      const current = (await q.query<{ version: number }>('SELECT version FROM jwt_keys_state WHERE id = 1 FOR UPDATE')).rows[0]?.version ?? null;
      if (current !== expectedVersion) throw conflict(`the JWT key list is at version ${current ?? 'none'}, not ${expectedVersion ?? 'none'}: another replica committed first`, { expectedVersion, version: current });
      const next = (current ?? 0) + 1;
      // ON CONFLICT: two first commits at once; the loser's insert changes nothing and it must reload.
      const sql = current === null ? 'INSERT INTO jwt_keys_state (id, version, state_json) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING' : 'UPDATE jwt_keys_state SET version = $1, state_json = $2 WHERE id = 1';
      if ((await q.query(sql, [next, json])).rowCount !== 1) throw conflict('the JWT key list was created by another replica first', { expectedVersion, version: null });
      return next;
    });
  }
}
