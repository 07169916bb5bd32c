// Small persistent counters and values in SQLite, e.g. the config snapshot version, which must keep growing
// across restarts so a proxy never sees a version go backwards.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { MetaStore } from '../store-contract.js';

export class SqliteMetaStore implements MetaStore {
  readonly #get: StatementSync;
  readonly #increment: StatementSync;
  readonly #claim: StatementSync;

  constructor(db: DatabaseSync) {
    this.#get = db.prepare('SELECT value FROM meta WHERE key = ?');
    // One statement: read, add and write cannot be split by another writer of the file.
    this.#increment = db.prepare("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) RETURNING value");
    this.#claim = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING');
  }

  async get(key: string): Promise<string | undefined> {
    return (this.#get.get(key) as { value: string } | undefined)?.value;
  }

  async increment(key: string): Promise<number> {
    return Number((this.#increment.get(key) as { value: string }).value);
  }

  async claim(key: string, value: string): Promise<string> {
    this.#claim.run(key, value);
    return (await this.get(key)) ?? value;
  }
}
