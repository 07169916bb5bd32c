// Creating a directory and its missing parents, a bounded number of steps. Node's mkdir(recursive) loops for ever,
// at 100 % CPU and deaf to SIGTERM, where a file system answers ENOENT for a child of a directory that exists (procfs:
// `dataDir: /proc/nope/data`); here each missing level is made once, and such an answer is an error that says so.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const errnoOf = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** mkdir -p with `mode` for each directory made; throws errno errors, or an Error saying the file system made none. */
export function makeDirsSync(dir: string, mode: number): void {
  const missing: string[] = [];
  // Up to the first level that exists: at most one step per path component.
  for (let p = resolve(dir); ; p = dirname(p)) {
    try {
      statSync(p);
      break;
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw e;
    }
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode });
    } catch (e) {
      if (errnoOf(e) === 'EEXIST') continue; // made meanwhile by another process; a non-directory fails the next level
      if (errnoOf(e) === 'ENOENT') throw new Error(`cannot create ${d}: its file system makes no directories there (ENOENT; a virtual file system such as /proc or /sys?)`);
      throw e;
    }
  }
}
