// The data dir claimed before a control plane touches anything in it: created owner-only when missing, locked for
// the life of the process (store/data-dir-lock.ts), and refused when an admin.sock there still answers (a control
// plane of a version without the lock). Two control planes on one data dir would fork the CA.
import { TesseraError } from '../../../common/errors.js';
import { socketAnswers } from '../admin/admin-socket.js';
import { type DataDirLock, lockDataDir } from '../store/data-dir-lock.js';
import { type DataDirLogger, prepareDataDir } from '../store/data-dir.js';

/** The data dir's lock, held; TESSERA_ERR_CP_ALREADY_RUNNING when another control plane serves it. */
export async function claimDataDir(dataDir: string, socketPath: string, log: DataDirLogger): Promise<DataDirLock> {
  prepareDataDir(dataDir, log);
  const lock = lockDataDir(dataDir);
  try {
    if (await socketAnswers(socketPath)) throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${socketPath} answers: another control plane serves this data dir`);
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}
