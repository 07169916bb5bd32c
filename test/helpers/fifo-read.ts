// Reading the other end of a FIFO that a test's writer fills, without blocking the test: a non-blocking fd.
import { readSync } from 'node:fs';

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
