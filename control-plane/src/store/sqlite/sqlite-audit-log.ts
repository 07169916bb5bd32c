// The audit trail beside SQLite: every decision (SVID issued or refused, token created, CA change, break-glass
// opened or expired) is one JSON line appended to <dataDir>/audit.log and one row in the database, both written
// before record() returns (a local file needs no queue); the file is cut at `maxBytes` (audit-file.ts). Never holds a
// key or token.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { AuditFile } from '../audit-file.js';
import type { AuditEvent, AuditLog } from '../store-contract.js';

export class SqliteAuditLog implements AuditLog {
  readonly #file: AuditFile;
  readonly #insert: StatementSync;
  readonly #recent: StatementSync;
  readonly #prune: StatementSync;

  /** `maxBytes`: audit.log is renamed to audit.log.1 before it would pass it (0: never; default 64 MiB). */
  constructor(db: DatabaseSync, file: string, maxBytes?: number) {
    this.#file = new AuditFile(file, maxBytes);
    this.#insert = db.prepare('INSERT INTO audit (at_ms, event, result, code, spiffe_id, attested_as, serial, not_after_ms, caller, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#recent = db.prepare('SELECT json FROM audit WHERE event LIKE ? ORDER BY seq DESC LIMIT ?');
    this.#prune = db.prepare('DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at_ms < ? ORDER BY at_ms LIMIT ?)');
  }

  record(atMs: number, e: AuditEvent): void {
    // A synchronous append: once record() returns, the line survives a kill -9 of this process.
    const json = this.#file.append(atMs, e);
    this.#insert.run(atMs, e.event, e.result ?? null, e.code ?? null, e.spiffeId ?? null, e.attestedAs ?? null, e.serial ?? null, e.notAfterMs ?? null, e.caller ?? null, json);
  }

  async recent(prefix: string, limit = 100): Promise<Record<string, unknown>[]> {
    return (this.#recent.all(`${prefix}%`, limit) as { json: string }[]).map((r) => JSON.parse(r.json) as Record<string, unknown>);
  }

  async prune(beforeMs: number, maxRows: number): Promise<number> {
    return Number(this.#prune.run(beforeMs, maxRows).changes);
  }

  /** Nothing is queued: every row was inserted by record(). */
  async flush(): Promise<void> {}

  close(): void {
    this.#file.close();
  }
}
