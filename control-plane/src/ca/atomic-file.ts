// Crash-safe file writes: write a temporary file, fsync it, rename it over the target, fsync the directory.
// A crash at any point leaves either the old or the new content, never a torn one.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Temporary files carry this marker so a restart can sweep the ones a crash left behind. */
export const TMP_MARKER = '.tmp-';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(path), `${basename(path)}${TMP_MARKER}${randomBytes(6).toString('hex')}`);
  // 'wx' + mode: the file is created with its final permissions before any byte is written (keys stay 0600).
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}
