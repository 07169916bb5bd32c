// A file written whole or not at all: the text goes to a temporary name beside it, created exclusively with its final
// mode (a key is never readable by others, not even empty), is flushed to disk, then renamed over the path, and the
// directory is flushed so the rename itself survives a crash. An interrupted command (a signal ends one-shot
// commands at once) or a power cut leaves the old file or the new one, never a prefix.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  // Random, not the pid alone: two writes of one process may overlap (an SVID installed while the last one is written).
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    // 'wx': a name planted in the directory (a link to elsewhere) fails the write instead of being written through.
    const file = await open(tmp, 'wx', mode);
    try {
      await file.writeFile(text);
      // The umask may have narrowed `mode` at create; it never widens it, so this only restores what was asked.
      await file.chmod(mode);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path));
}

/** Flushes a directory's entries (the rename above); a platform that cannot open a directory skips it. */
async function syncDir(dir: string): Promise<void> {
  let d: Awaited<ReturnType<typeof open>> | undefined;
  try {
    d = await open(dir, 'r');
    await d.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EISDIR' && (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  } finally {
    await d?.close();
  }
}
