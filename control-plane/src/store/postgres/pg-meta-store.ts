// Small shared values and counters in PostgreSQL (e.g. the config snapshot version, which must grow across
// restarts and across replicas). increment is one upsert: concurrent callers each get a distinct next value.
import type { MetaStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';

export class PgMetaStore implements MetaStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#db.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])).rows[0]?.value;
  }

  async increment(key: string): Promise<number> {
    const sql = `INSERT INTO meta (key, value) VALUES ($1, '1')
                 ON CONFLICT (key) DO UPDATE SET value = (meta.value::BIGINT + 1)::TEXT
                 RETURNING value`;
    return Number((await this.#db.query<{ value: string }>(sql, [key])).rows[0]!.value);
  }
}
