// Reading a small file whole without trusting what is at its path: opened non-blocking (a FIFO put in a file's place
// must not stall the event loop, where every read of a proxy's files runs), judged by its descriptor (a FIFO, a
// device such as /dev/zero or a directory is not a file to read), and read no further than a bound (a file of any
// size was read whole into memory). Used for every file read at run time: policy files, a proxy's identity files and
// edge certificates, the control plane's static endpoints, JWKS, tokens and bundle documents.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** A file opened for a bounded read: its descriptor and what fstat says of it. Close it with closeSync. */
export interface OpenedFile {
  readonly fd: number;
  readonly stat: Stats;
}

/**
 * Opens `path` read-only without blocking (a FIFO without a writer opens at once); errno errors are thrown.
 * `noFollow`: a symbolic link at `path` is refused (ELOOP) instead of followed, for files only this process writes.
 */
export function openNonBlocking(path: string, noFollow = false): OpenedFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0));
  try {
    return { fd, stat: fstatSync(fd) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Why readSmallFile refused a file it could open: not a regular file, or larger than its bound. */
export class FileRefused extends Error {
  constructor(readonly why: 'not_regular' | 'too_large', max: number) {
    super(why === 'not_regular' ? 'not a regular file (a FIFO, a device or a directory)' : `over ${max} bytes, the most it may be`);
  }
}

/**
 * The text of the regular file at `path`, of at most `max` bytes, through one descriptor (`check` judges its stat
 * first: a key's mode is the mode of the bytes read). Throws FileRefused, errno errors, or what `check` throws.
 * `noFollow` as for openNonBlocking.
 */
export function readSmallFile(path: string, max: number, check?: (stat: Stats) => void, noFollow = false): string {
  return readSmallFileBytes(path, max, check, noFollow).toString('utf8');
}

/** readSmallFile's bytes, undecoded: for text whose encoding is judged (a config must be UTF-8, not made so). */
export function readSmallFileBytes(path: string, max: number, check?: (stat: Stats) => void, noFollow = false): Buffer {
  const { fd, stat } = openNonBlocking(path, noFollow);
  try {
    if (!stat.isFile()) throw new FileRefused('not_regular', max);
    check?.(stat);
    const bytes = readBytesAtMost(fd, max, stat.size);
    if (bytes === null) throw new FileRefused('too_large', max);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * The file's text (UTF-8), or null when it holds more than `max` bytes (the rest is never read). `sizeHint` (its
 * fstat size) sizes the buffer, grown only if the file grows while read: a bound of MiBs is not allocated for a file
 * of a few KiB on every read (a bundle document is read on every request).
 */
export function readAtMost(fd: number, max: number, sizeHint = max): string | null {
  return readBytesAtMost(fd, max, sizeHint)?.toString('utf8') ?? null;
}

/** readAtMost's bytes, undecoded (a view of the buffer read into). */
export function readBytesAtMost(fd: number, max: number, sizeHint = max): Buffer | null {
  let buf = Buffer.allocUnsafe(Math.min(max, Math.max(0, sizeHint)) + 1);
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, n, buf.length - n, null);
    n += got;
    if (got === 0 || n > max) break;
    if (n === buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
      buf.copy(grown, 0, 0, n);
      buf = grown;
    }
  }
  return n > max ? null : buf.subarray(0, n);
}
