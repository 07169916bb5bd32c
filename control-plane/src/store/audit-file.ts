// The local audit.log every store keeps beside its database: one JSON line per event, appended synchronously (once
// append() returns, the line survives a kill -9), owner-only. A line cut short by a crash is ended at open, so the
// next event starts a whole line of its own. Rotation is the operator's (logrotate): a file renamed or removed away
// is let go and audit.log made again at the next event; copytruncate works too (O_APPEND writes at the new end).
// Only a regular file is written, never through a symbolic link.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
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

/**
 * Appending, created 0600, never through a symbolic link, and without waiting: a FIFO in the file's place would
 * block the event loop (every API) in the first write it cannot take.
 */
const OPEN_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens the trail at `path`; anything but a regular file (a FIFO, a device, a directory) is refused, coded. */
function openTrail(path: string): { fd: number; ino: number; dev: number } {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS, 0o600);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ELOOP' || errno === 'EISDIR') throw new TesseraError('TESSERA_ERR_STORE_IO', `${path} is ${errno === 'ELOOP' ? 'a symbolic link' : 'a directory'}: the audit trail is written only to a regular file`, { file: path });
    throw fileFault(e, path);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new TesseraError('TESSERA_ERR_STORE_IO', `${path} is not a regular file`, { file: path });
  }
  return { fd, ino: st.ino, dev: st.dev };
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
    ({ fd: this.#fd, ino: this.#ino, dev: this.#dev } = openTrail(path));
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
    // Refused (symlink, FIFO, directory): this event fails, coded, and the old descriptor stays for the next try.
    const next = openTrail(this.#path);
    closeSync(this.#fd);
    ({ fd: this.#fd, ino: this.#ino, dev: this.#dev } = next);
    this.#torn = false;
    endTornLine(this.#fd);
  }
}

function endTornLine(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) writeSync(fd, '\n');
}
