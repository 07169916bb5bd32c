// The files and directories a command writes (`--out`, `--json`): checked before the command does anything it cannot
// take back (spends a single-use join token, has the control plane make a key, runs a benchmark for minutes), and
// written whole or not at all. Every failure is TESSERA_ERR_CLI_FILE_UNWRITABLE naming the flag, the path and the
// cause: `svid fetch` once attested first and met a bad --out last, losing the token and the SVID (audit 55a F2).
import { lstat, mkdir, open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { TesseraError } from '../common/errors.js';
import { errnoReason } from '../shared-io/read-named-file.js';
import { writeAtomic } from '../shared-io/write-atomic.js';

function unwritable(flag: string, path: string, why: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CLI_FILE_UNWRITABLE', `--${flag} ${path}: ${why}`, { file: path, flag });
}

const reason = (e: unknown) => errnoReason(e, 'cannot be written');

/** A file can be made in `dir`: one made and removed at once, as the real write will (a temporary name beside it). */
async function probeDirectory(flag: string, shownPath: string, dir: string): Promise<void> {
  const probe = join(dir, `.tessera-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await (await open(probe, 'wx', 0o600)).close();
  } catch (e) {
    throw unwritable(flag, shownPath, reason(e));
  }
  await rm(probe, { force: true });
}

/** `path` is not a directory (or an existing file a rename could not replace). */
async function notADirectory(flag: string, path: string): Promise<void> {
  const st = await lstat(path).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unwritable(flag, path, reason(e));
  });
  if (st?.isDirectory()) throw unwritable(flag, path, 'is a directory, not a file (EISDIR)');
}

/** Checks that `path` (given to --flag) can be written: its directory exists and takes a file, and it is no directory. */
export async function checkOutFile(flag: string, path: string): Promise<void> {
  await notADirectory(flag, path);
  await probeDirectory(flag, path, dirname(path));
}

/**
 * Makes --flag's directory (0700, parents included) and checks that each of `names` can be written in it. The
 * directory stays made if the command fails later: empty, it costs nothing, and it is what the next try needs.
 */
export async function prepareOutDir(flag: string, dir: string, names: readonly string[]): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    // A file where the directory should be is EEXIST from mkdir: say what it is.
    const code = (e as NodeJS.ErrnoException).code;
    throw unwritable(flag, dir, code === 'EEXIST' ? 'is a file, not a directory (ENOTDIR)' : reason(e));
  }
  for (const name of names) await notADirectory(flag, join(dir, name));
  await probeDirectory(flag, dir, dir);
}

/** writeAtomic, with a failure coded and named (the disk may fill, or the directory change, after the check). */
export async function writeOutFile(flag: string, path: string, text: string, mode: number): Promise<void> {
  await writeAtomic(path, text, mode).catch((e: unknown) => {
    throw unwritable(flag, path, reason(e));
  });
}
