// `tessera up` without --config wants the embedded mesh's fixed ports (15000, 15006, 18080, …): test files that
// run it sit in parallel vitest workers, so they take turns through one lock directory (mkdir is atomic). A lock
// whose owner process is gone is taken over; the wait is bounded.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK = join(tmpdir(), 'tessera-test-default-ports.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits (at most `timeoutMs`) for the default ports to be this process's; returns the release. */
export async function holdDefaultPorts(timeoutMs = 240_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK);
      await writeFile(join(LOCK, 'pid'), String(process.pid));
      return () => rm(LOCK, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => '0'));
    if (owner > 0 && !alive(owner)) {
      await rm(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the default tessera up ports stayed held by pid ${owner} for ${timeoutMs} ms (${LOCK})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
