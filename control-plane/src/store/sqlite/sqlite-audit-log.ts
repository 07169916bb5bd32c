// The audit trail beside SQLite: every decision (SVID issued or refused, token created, CA change, break-glass
// opened or expired) is one JSON line appended to <dataDir>/audit.log and one row in the database, both written
// before record() returns (a local file needs no queue). Never holds a key or token.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AuditEvent, AuditLog } from '../store-contract.js';

/** The line audit.log gets for an event: the event with an ISO timestamp (and a readable notAfter). */
export function auditLine(atMs: number, e: AuditEvent): string {
  return JSON.stringify({
    ts: new Date(atMs).toISOString(),
    ...e,
    ...(e.notAfterMs !== undefined ? { notAfter: new Date(e.notAfterMs).toISOString() } : {}),
  });
}

export class SqliteAuditLog implements AuditLog {
  readonly #fd: number;
  readonly #insert: StatementSync;
  readonly #recent: StatementSync;

  constructor(db: DatabaseSync, file: string) {
    this.#fd = openSync(file, 'a+', 0o600);
    endTornLine(this.#fd);
    this.#insert = db.prepare('INSERT INTO audit (at_ms, event, result, code, spiffe_id, attested_as, serial, not_after_ms, caller, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#recent = db.prepare('SELECT json FROM audit WHERE event LIKE ? ORDER BY seq DESC LIMIT ?');
  }

  record(atMs: number, e: AuditEvent): void {
    const json = auditLine(atMs, e);
    // A synchronous append: once record() returns, the line survives a kill -9 of this process.
    writeSync(this.#fd, `${json}\n`);
    this.#insert.run(atMs, e.event, e.result ?? null, e.code ?? null, e.spiffeId ?? null, e.attestedAs ?? null, e.serial ?? null, e.notAfterMs ?? null, e.caller ?? null, json);
  }

  async recent(prefix: string, limit = 100): Promise<Record<string, unknown>[]> {
    return (this.#recent.all(`${prefix}%`, limit) as { json: string }[]).map((r) => JSON.parse(r.json) as Record<string, unknown>);
  }

  /** Nothing is queued: every row was inserted by record(). */
  async flush(): Promise<void> {}

  close(): void {
    closeSync(this.#fd);
  }
}

/** A crash mid-append leaves a partial last line: end it, so the next record starts a whole JSON line of its own. */
function endTornLine(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) writeSync(fd, '\n');
}
