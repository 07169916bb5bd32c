// The local audit.log every store keeps beside its database: one JSON line per event, appended synchronously (once
// append() returns, the line survives a kill -9), owner-only. A line cut short by a crash is ended at open, so the
// next event starts a whole line of its own.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { AuditEvent } from './store-contract.js';

/** The line audit.log gets for an event: the event with an ISO timestamp (and a readable notAfter). */
export function auditLine(atMs: number, e: AuditEvent): string {
  return JSON.stringify({
    ts: new Date(atMs).toISOString(),
    ...e,
    ...(e.notAfterMs !== undefined ? { notAfter: new Date(e.notAfterMs).toISOString() } : {}),
  });
}

export class AuditFile {
  readonly #fd: number;

  constructor(path: string) {
    this.#fd = openSync(path, 'a+', 0o600);
    endTornLine(this.#fd);
  }

  /** Appends the event's line and returns it (the JSON the database row carries too). */
  append(atMs: number, e: AuditEvent): string {
    const json = auditLine(atMs, e);
    writeSync(this.#fd, `${json}\n`);
    return json;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function endTornLine(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) writeSync(fd, '\n');
}
