// The local audit.log every store keeps beside its database: one JSON line per event, appended synchronously (once
// append() returns, the line survives a kill -9), owner-only. A line cut short by a crash is ended at open, so the
// next event starts a whole line of its own. Rotation is the operator's (logrotate): a file renamed or removed away
// is let go and audit.log made again at the next event; copytruncate works too (O_APPEND writes at the new end).
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { TesseraError } from '../../../common/errors.js';
import type { AuditEvent } from './store-contract.js';
import { fileFault } from './store-faults.js';

/** The line audit.log gets for an event: the event with an ISO timestamp (and a readable notAfter). */
export function auditLine(atMs: number, e: AuditEvent): string {
  return JSON.stringify({
    ts: new Date(atMs).toISOString(),
    ...e,
    ...(e.notAfterMs !== undefined ? { notAfter: new Date(e.notAfterMs).toISOString() } : {}),
  });
}

export class AuditFile {
  #fd: number;
  /** The open file's identity, to notice when the path names another file (or none) after a rotation. */
  #ino: number;
  #dev: number;
  readonly #path: string;
  /** The last append was cut short: the next one starts a line of its own. */
  #torn = false;

  constructor(path: string) {
    this.#path = path;
    this.#fd = openSync(path, 'a+', 0o600);
    const st = fstatSync(this.#fd);
    this.#ino = st.ino;
    this.#dev = st.dev;
    endTornLine(this.#fd);
  }

  /**
   * Appends the event's line and returns it (the JSON the database row carries too). A full disk is
   * TESSERA_ERR_STORE_FULL; a line it cut short is ended before the next one, as at open.
   */
  append(atMs: number, e: AuditEvent): string {
    const json = auditLine(atMs, e);
    let written: number;
    let bytes: Buffer;
    try {
      this.#followRotation();
      bytes = Buffer.from(`${this.#torn ? '\n' : ''}${json}\n`);
      written = writeSync(this.#fd, bytes);
    } catch (err) {
      throw fileFault(err, this.#path);
    }
    this.#torn = written < bytes.length;
    if (this.#torn) throw new TesseraError('TESSERA_ERR_STORE_FULL', `${this.#path}: only ${written} of ${bytes.length} bytes written`, { file: this.#path });
    return json;
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** One stat per event (events are issuances and refusals, not requests): reopens the path if it moved away. */
  #followRotation(): void {
    const now = statSync(this.#path, { throwIfNoEntry: false });
    if (now && now.ino === this.#ino && now.dev === this.#dev) return;
    const fd = openSync(this.#path, 'a+', 0o600);
    closeSync(this.#fd);
    this.#fd = fd;
    const st = fstatSync(fd);
    this.#ino = st.ino;
    this.#dev = st.dev;
    this.#torn = false;
    endTornLine(fd);
  }
}

function endTornLine(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) writeSync(fd, '\n');
}
