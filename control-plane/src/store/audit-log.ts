// The audit trail: every decision (SVID issued or refused, token created, CA change, break-glass opened or
// expired) is one JSON line appended to <dataDir>/audit.log and one row in SQLite. Never holds a key or token.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export interface AuditEvent {
  /** e.g. svid.issued, svid.refused, token.created, ca.activated, break_glass.opened, break_glass.expired. */
  readonly event: string;
  readonly result?: 'issued' | 'refused' | 'ok';
  readonly code?: string;
  readonly spiffeId?: string;
  readonly attestedAs?: string;
  readonly serial?: string;
  readonly notAfterMs?: number;
  /** Who asked: a peer address, "admin.sock", or "control-plane". */
  readonly caller?: string;
  readonly [extra: string]: unknown;
}

export class AuditLog {
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
    const line = {
      ts: new Date(atMs).toISOString(),
      ...e,
      ...(e.notAfterMs !== undefined ? { notAfter: new Date(e.notAfterMs).toISOString() } : {}),
    };
    const json = JSON.stringify(line);
    // A synchronous append: once record() returns, the line survives a kill -9 of this process.
    writeSync(this.#fd, `${json}\n`);
    this.#insert.run(atMs, e.event, e.result ?? null, e.code ?? null, e.spiffeId ?? null, e.attestedAs ?? null, e.serial ?? null, e.notAfterMs ?? null, e.caller ?? null, json);
  }

  /** The latest events whose name starts with `prefix`, newest first. */
  recent(prefix: string, limit = 100): Record<string, unknown>[] {
    return (this.#recent.all(`${prefix}%`, limit) as { json: string }[]).map((r) => JSON.parse(r.json) as Record<string, unknown>);
  }

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
