// Operator bans, durable in SQLite: a banned SPIFFE ID or SVID serial stays banned across restarts until it is
// lifted. A serial ban may carry the SVID's NotAfter, after which it no longer needs enforcing.
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export type BanKind = 'spiffe_id' | 'serial';

export interface Ban {
  readonly kind: BanKind;
  /** The SPIFFE ID, or the canonical serial (common/pki/serial.ts). */
  readonly value: string;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAtMs: number;
  /** Serial bans: the SVID's NotAfter when the inventory knows it. */
  readonly notAfterMs: number | null;
}

interface Row {
  kind: BanKind;
  value: string;
  reason: string;
  created_by: string;
  created_at_ms: number;
  not_after_ms: number | null;
}

const fromRow = (r: Row): Ban => ({ kind: r.kind, value: r.value, reason: r.reason, createdBy: r.created_by, createdAtMs: r.created_at_ms, notAfterMs: r.not_after_ms });

export class RevocationStore {
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #get: StatementSync;
  readonly #all: StatementSync;
  readonly #live: StatementSync;

  constructor(db: DatabaseSync) {
    this.#insert = db.prepare('INSERT INTO revocations (kind, value, reason, created_by, created_at_ms, not_after_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, value) DO NOTHING');
    this.#delete = db.prepare('DELETE FROM revocations WHERE kind = ? AND value = ?');
    this.#get = db.prepare('SELECT * FROM revocations WHERE kind = ? AND value = ?');
    this.#all = db.prepare('SELECT * FROM revocations ORDER BY kind, value');
    this.#live = db.prepare('SELECT * FROM revocations WHERE not_after_ms IS NULL OR not_after_ms > ? ORDER BY kind, value');
  }

  /** Adds a ban; false when that exact ban already exists (the first one stays as it was). */
  add(b: Ban): boolean {
    return Number(this.#insert.run(b.kind, b.value, b.reason, b.createdBy, b.createdAtMs, b.notAfterMs).changes) === 1;
  }

  /** Lifts a ban; false when there was none. */
  remove(kind: BanKind, value: string): boolean {
    return Number(this.#delete.run(kind, value).changes) === 1;
  }

  find(kind: BanKind, value: string): Ban | undefined {
    const r = this.#get.get(kind, value) as Row | undefined;
    return r && fromRow(r);
  }

  all(): Ban[] {
    return (this.#all.all() as unknown as Row[]).map(fromRow);
  }

  /** The bans still worth enforcing at `nowMs` (a serial ban past its SVID's NotAfter is not). */
  live(nowMs: number): Ban[] {
    return (this.#live.all(nowMs) as unknown as Row[]).map(fromRow);
  }
}
