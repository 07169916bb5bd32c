// Room in the data dir for a write, proved by writing: HEADROOM_BYTES to a scratch file beside the store, flushed
// (a file system that allocates late says ENOSPC at fsync, not at write) and removed again. The store's health probes
// with it after a fault because audit.log and SQLite's WAL grow into the data dir's free space, and a small write
// proves nothing there: it fits into blocks a failed write left allocated (audit 24b F3). Random bytes, so a
// compressing file system (ZFS, btrfs) needs the room too.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { fileFault } from './store-faults.js';

export const HEADROOM_FILE = '.write-probe';
/** Several issuances' worth: an audit line and an inventory row's WAL frames are a few KiB each. */
export const HEADROOM_BYTES = 64 * 1024;

const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** Throws the data dir's fault coded (TESSERA_ERR_STORE_FULL, _READ_ONLY, _IO) when the bytes cannot be written. */
export function probeHeadroom(dataDir: string, bytes = HEADROOM_BYTES): void {
  const path = join(dataDir, HEADROOM_FILE);
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
    throw fileFault(e, path);
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(path, { force: true });
  }
}
