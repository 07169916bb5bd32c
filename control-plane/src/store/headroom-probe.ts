// Room in the data dir for a write, proved by writing: HEADROOM_BYTES to a scratch file beside the store, flushed
// (a file system that allocates late says ENOSPC at fsync, not at write) and removed again. The store's health probes
// with it after a fault because audit.log and SQLite's WAL grow into the data dir's free space, and a small write
// proves nothing there: it fits into blocks a failed write left allocated (audit 24b F3). Random bytes, so a
// compressing file system (ZFS, btrfs) needs the room too.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, lstatSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { fileFault } from './store-faults.js';

/** The scratch file's name: `.write-probe-<random>`, new each time (see probeHeadroom). */
export const HEADROOM_PREFIX = '.write-probe-';
/** Several issuances' worth: an audit line and an inventory row's WAL frames are a few KiB each. */
export const HEADROOM_BYTES = 64 * 1024;

// O_EXCL on a fresh name: whatever else sits in the data dir (a FIFO, a directory, a link planted under a fixed
// name) is never opened, so an open cannot block the event loop (a FIFO's open waits for a reader) or fail for good.
const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Throws the data dir's fault coded (TESSERA_ERR_STORE_FULL, _READ_ONLY, _IO) when the bytes cannot be written. */
export function probeHeadroom(dataDir: string, bytes = HEADROOM_BYTES): void {
  const path = join(dataDir, `${HEADROOM_PREFIX}${randomBytes(6).toString('hex')}`);
  let fd: number | undefined;
  try {
    fd = openSync(path, FLAGS, 0o600);
    const data = randomBytes(bytes);
    for (let off = 0; off < bytes; ) {
      const n = writeSync(fd, data, off, bytes - off);
      if (n === 0) throw new TesseraError('TESSERA_ERR_STORE_FULL', `${path}: only ${off} of ${bytes} bytes written`, { file: path });
      off += n;
    }
    fsyncSync(fd);
  } catch (e) {
    const fault = fileFault(e, path);
    // Every failure coded: an errno the store has no name for is an I/O fault of the data dir.
    throw fault instanceof TesseraError ? fault : new TesseraError('TESSERA_ERR_STORE_IO', `${path}: ${(e as Error).message}`, { file: path }, { cause: e });
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      rmSync(path, { force: true });
    } catch {
      // The probe's own verdict stands; a file it could not remove is retried under a new name next time.
    }
  }
}

/**
 * Removes scratch files a probe left when the process died mid-probe (each probe has its own name, so none is ever
 * reused): the regular files of that prefix only, at start. Best effort: what cannot be removed is left.
 */
export function removeProbeLeftovers(dataDir: string): void {
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(HEADROOM_PREFIX)) continue;
    const path = join(dataDir, name);
    try {
      if (lstatSync(path).isFile()) rmSync(path);
    } catch {
      // someone else's, or gone already
    }
  }
}
