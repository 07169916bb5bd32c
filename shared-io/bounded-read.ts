// Reading a small file whole without trusting what is at its path: opened non-blocking (a FIFO put in a file's place
// must not stall the event loop, where every read of a proxy's files runs), judged by its descriptor (a FIFO, a
// device such as /dev/zero or a directory is not a file to read), and read no further than a bound (a file of any
// size was read whole into memory). Used for policy files and identity files.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** A file opened for a bounded read: its descriptor and what fstat says of it. Close it with closeSync. */
export interface OpenedFile {
  readonly fd: number;
  readonly stat: Stats;
}

/** Opens `path` read-only without blocking (a FIFO without a writer opens at once); errno errors are thrown. */
export function openNonBlocking(path: string): OpenedFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
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
 */
export function readSmallFile(path: string, max: number, check?: (stat: Stats) => void): string {
  const { fd, stat } = openNonBlocking(path);
  try {
    if (!stat.isFile()) throw new FileRefused('not_regular', max);
    check?.(stat);
    const text = readAtMost(fd, max);
    if (text === null) throw new FileRefused('too_large', max);
    return text;
  } finally {
    closeSync(fd);
  }
}

/** The file's text (UTF-8), or null when it holds more than `max` bytes (the rest is never read). */
export function readAtMost(fd: number, max: number): string | null {
  const buf = Buffer.allocUnsafe(max + 1);
  let n = 0;
  for (let got = -1; got !== 0 && n <= max; n += got) got = readSync(fd, buf, n, max + 1 - n, null);
  return n > max ? null : buf.toString('utf8', 0, n);
}
