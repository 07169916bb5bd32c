// Small persistent counters and values, e.g. the config snapshot version, which must keep growing across
// restarts so a proxy never sees a version go backwards.
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export class MetaStore {
  readonly #get: StatementSync;
  readonly #put: StatementSync;

  constructor(db: DatabaseSync) {
    this.#get = db.prepare('SELECT value FROM meta WHERE key = ?');
    this.#put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  get(key: string): string | undefined {
    return (this.#get.get(key) as { value: string } | undefined)?.value;
  }

  /** Adds one to an integer counter and returns the new value. */
  increment(key: string): number {
    const next = Number(this.get(key) ?? '0') + 1;
    this.#put.run(key, String(next));
    return next;
  }
}
