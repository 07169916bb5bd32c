// Small shared values and counters in PostgreSQL (e.g. the config snapshot version, which must grow across
// restarts and across replicas). increment is one upsert: concurrent callers each get a distinct next value;
// claim keeps the first value written under a key, whichever replica wrote it.
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

  async claim(key: string, value: string): Promise<string> {
    await this.#db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
    // A second statement: its snapshot sees a row a concurrent claimer committed while the insert waited for it.
    return (await this.get(key)) ?? value;
  }
}
