// One control plane per data dir, decided by the kernel before anything in the dir is touched: two processes on one
// dir would each create or load a CA and fork it. <dataDir>/control-plane.lock is held for the life of the process
// (shared-io/process-file-lock.ts: a kernel lock, dropped however the process ends; never a PID compared).
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { type FileLock, FileLockRefused, lockFile } from '../../../shared-io/process-file-lock.js';

export const LOCK_FILE = 'control-plane.lock';

export type DataDirLock = FileLock;

/**
 * Takes the data dir's lock, or throws TESSERA_ERR_CP_ALREADY_RUNNING (held) / TESSERA_ERR_CP_DATA_DIR (anything else:
 * no lock file of this user's at the path, a read-only dir; the control plane has no read-only mode for its data dir).
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE);
  try {
    return lockFile(file);
  } catch (e) {
    if (!(e instanceof FileLockRefused)) throw e;
    if (e.why === 'held') throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${file} is locked: another control plane serves this data dir`, { file }, { cause: e.cause });
    // Never taken over or removed (another start may be looking at it too): the operator removes it.
    const hint = e.why === 'foreign' ? ' (not a lock file a control plane of this user made: remove it)' : '';
    throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `${file}: cannot take the data dir's lock: ${e.detail}${hint}`, { file }, { cause: e.cause });
  }
}
