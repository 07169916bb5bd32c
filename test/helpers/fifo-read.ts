// A FIFO whose other end a test's writer fills, read without blocking the test: a non-blocking fd.
import { execFileSync } from 'node:child_process';
import { constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** A new FIFO `dir/name` and a non-blocking reader on it (opened first, so a writer's open does not block). */
export function fifoWithReader(dir: string, name: string): { readonly path: string; readonly reader: number } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return { path, reader: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK) };
}

/** What a non-blocking fd holds now, up to `buf`'s size (0 when empty). */
export function readNow(fd: number, buf: Buffer): number {
  try {
    return readSync(fd, buf);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
    throw e;
  }
}

/** Everything a non-blocking fd holds now. */
export function readAll(fd: number): Buffer {
  const parts: Buffer[] = [];
  const b = Buffer.alloc(65_536);
  for (let n = readNow(fd, b); n > 0; n = readNow(fd, b)) parts.push(Buffer.from(b.subarray(0, n)));
  return Buffer.concat(parts);
}
