// Operator bans in SQLite: a banned SPIFFE ID or SVID serial stays banned across restarts until it is lifted. A
// serial ban may carry the SVID's NotAfter, after which it no longer needs enforcing.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Ban, BanKind, RevocationStore } from '../store-contract.js';
import { type BanRow as Row, banFromRow as fromRow } from '../store-rows.js';

export class SqliteRevocationStore implements RevocationStore {
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #get: StatementSync;
  readonly #all: StatementSync;
  readonly #live: StatementSync;
  readonly #matching: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO revocations (kind, value, reason, created_by, created_at_ms, not_after_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, value) DO NOTHING');
    this.#delete = db.prepare('DELETE FROM revocations WHERE kind = ? AND value = ?');
    this.#get = db.prepare('SELECT * FROM revocations WHERE kind = ? AND value = ?');
    this.#all = db.prepare('SELECT * FROM revocations ORDER BY kind, value');
    this.#live = db.prepare('SELECT * FROM revocations WHERE not_after_ms IS NULL OR not_after_ms > ? ORDER BY kind, value');
    this.#matching = db.prepare("SELECT * FROM revocations WHERE (kind = 'spiffe_id' AND value = ?) OR (kind = 'serial' AND value = ?) ORDER BY kind, value");
  }

  /** The first of two equal bans stays as it was. */
  async add(b: Ban): Promise<boolean> {
    return Number(this.#insert.run(b.kind, b.value, b.reason, b.createdBy, b.createdAtMs, b.notAfterMs).changes) === 1;
  }

  async remove(kind: BanKind, value: string): Promise<boolean> {
    return Number(this.#delete.run(kind, value).changes) === 1;
  }

  async find(kind: BanKind, value: string): Promise<Ban | undefined> {
    const r = this.#get.get(kind, value) as Row | undefined;
    return r && fromRow(r);
  }

  async all(): Promise<Ban[]> {
    return (this.#all.all() as unknown as Row[]).map(fromRow);
  }

  /** A serial ban past its SVID's NotAfter is not worth enforcing. */
  async live(nowMs: number): Promise<Ban[]> {
    return (this.#live.all(nowMs) as unknown as Row[]).map(fromRow);
  }

  async matching(spiffeId: string, serial: string | undefined): Promise<Ban[]> {
    return (this.#matching.all(spiffeId, serial ?? null) as unknown as Row[]).map(fromRow);
  }
}
