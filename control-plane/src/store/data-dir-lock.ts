// One control plane per data dir, decided by the kernel before anything in the dir is touched: two processes on one
// dir would each create or load a CA and fork it. <dataDir>/control-plane.lock is held for the life of the process
// (shared-io/process-file-lock.ts: a kernel lock, dropped however the process ends; never a PID compared).
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { type FileLock, FileLockRefused, lockFile } from '../../../shared-io/process-file-lock.js';

export const LOCK_FILE = 'control-plane.lock';

export type DataDirLock = FileLock;

/** Takes the data dir's lock, or throws TESSERA_ERR_CP_ALREADY_RUNNING (held) / TESSERA_ERR_CP_DATA_DIR (unusable). */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE);
  try {
    return lockFile(file);
  } catch (e) {
    if (!(e instanceof FileLockRefused)) throw e;
    if (e.why === 'held') throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${file} is locked: another control plane serves this data dir`, { file }, { cause: e.cause });
    const hint = e.foreign ? ' (not a lock file a control plane made: remove it)' : '';
    throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `${file}: cannot take the data dir's lock: ${e.detail}${hint}`, { file }, { cause: e.cause });
  }
}
