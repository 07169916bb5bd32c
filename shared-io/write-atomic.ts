// A file written whole or not at all: the text goes to a temporary name beside it, then is renamed over the path.
// An interrupted command (a signal ends one-shot commands at once) leaves the old file or none, never a prefix.
import { chmod, rename, rm, writeFile } from 'node:fs/promises';

export async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, text, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
