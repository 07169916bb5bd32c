// The local audit.log every store keeps beside its database: one JSON line per event, appended synchronously (once
// append() returns, the line survives a kill -9), owner-only. A line cut short by a crash is ended at open, so the
// next event starts a whole line of its own. Bounded by size in-process (audit 53c F4: a distroless pod runs no
// logrotate, and an emptyDir with a sizeLimit gets the pod evicted): a line that would take the file past maxBytes
// first renames it to audit.log.1 (the previous .1 dropped) and starts a new audit.log, so each file holds whole
// lines only and at most two files exist. maxBytes 0 leaves rotation to the operator (logrotate): a file renamed or
// removed away is let go and audit.log made again at the next event; copytruncate works too (O_APPEND writes at the
// new end). Only a regular file is written, never through a symbolic link.
import { closeSync, constants, fstatSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
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

/** audit.logMaxBytes when unset: two files of it (audit.log and audit.log.1) use half a 256 MiB emptyDir. */
export const DEFAULT_AUDIT_LOG_MAX_BYTES = 64 * 1024 * 1024;
/** The smallest audit.logMaxBytes but 0: far above one line (under 5 KB), so a file holds many. */
export const MIN_AUDIT_LOG_MAX_BYTES = 64 * 1024;

/** Where the file is moved when full: one generation kept, the one before it dropped by the rename. */
export const rotatedName = (path: string): string => `${path}.1`;

export class AuditFile {
  #fd: number;
  /** The open file's identity, to notice when the path names another file (or none) after a rotation. */
  #ino: number;
  #dev: number;
  readonly #path: string;
  /** The file is cut before a line would take it past this many bytes; 0: never (rotated by the operator). */
  readonly #maxBytes: number;
  /** The last append was cut short: the next one starts a line of its own. */
  #torn = false;

  constructor(path: string, maxBytes = DEFAULT_AUDIT_LOG_MAX_BYTES) {
    this.#path = path;
    this.#maxBytes = maxBytes;
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
      const size = this.#followRotation();
      bytes = Buffer.from(`${this.#torn ? '\n' : ''}${json}\n`);
      // An empty file takes any line: one longer than maxBytes is written whole, never split or refused.
      if (this.#maxBytes > 0 && size > 0 && size + bytes.length > this.#maxBytes) {
        this.#rotate();
        bytes = Buffer.from(`${json}\n`);
      }
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

  /**
   * One stat per event (events are issuances and refusals, not requests): reopens the path if it moved away.
   * Returns the size of the file appended to.
   */
  #followRotation(): number {
    const now = statSync(this.#path, { throwIfNoEntry: false });
    if (now && now.ino === this.#ino && now.dev === this.#dev) return now.size;
    // Refused (symlink, FIFO, directory): this event fails, coded, and the old descriptor stays for the next try.
    this.#reopen();
    return fstatSync(this.#fd).size;
  }

  /**
   * Renames the full file to audit.log.1 (replacing the previous one in one step) and starts audit.log again, 0600.
   * Single-threaded and synchronous: no line is written between the two, so none is lost or lands split across
   * them. A failed rename fails this event, coded, with the file as it was; a failed reopen after it leaves the old
   * descriptor, and the next event (no file at the path) opens audit.log again.
   */
  #rotate(): void {
    const to = rotatedName(this.#path);
    try {
      renameSync(this.#path, to);
    } catch (e) {
      const coded = fileFault(e, to);
      // A directory (or anything rename cannot replace) at audit.log.1: coded like one at audit.log.
      if (coded instanceof TesseraError) throw coded;
      throw new TesseraError('TESSERA_ERR_STORE_IO', `${this.#path} cannot be rotated to ${to}: ${(e as Error).message}`, { file: to }, { cause: e });
    }
    this.#reopen();
  }

  #reopen(): void {
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
