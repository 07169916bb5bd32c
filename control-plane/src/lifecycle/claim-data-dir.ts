// The data dir claimed before a control plane touches anything in it: created owner-only when missing, locked for
// the life of the process (store/data-dir-lock.ts), and refused when an admin.sock there still answers (a control
// plane of a version without the lock). Two control planes on one data dir would fork the CA.
import { isTesseraError, TesseraError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import { socketAnswers } from '../admin/admin-socket.js';
import { type DataDirLogger, prepareDataDir } from '../store/data-dir.js';
import { type DataDirLock, lockDataDir } from '../store/data-dir-lock.js';

/**
 * How often a held lock is asked for again before it counts as another control plane's. Two starts on one fresh data
 * dir can each meet the other half-way through taking it (SQLite: both hold SHARED, neither may go EXCLUSIVE) and
 * both be refused, leaving no control plane at all; asked again after a jittered pause, one of them wins.
 */
const LOCK_TRIES = 8;

/** The data dir's lock, held; TESSERA_ERR_CP_ALREADY_RUNNING when another control plane serves it. */
export async function claimDataDir(dataDir: string, socketPath: string, log: DataDirLogger, timers: Pick<Timers, 'setTimeout'>): Promise<DataDirLock> {
  prepareDataDir(dataDir, log);
  const lock = await takeLock(dataDir, timers);
  try {
    if (await socketAnswers(socketPath)) throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${socketPath} answers: another control plane serves this data dir`);
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function takeLock(dataDir: string, timers: Pick<Timers, 'setTimeout'>): Promise<DataDirLock> {
  for (let attempt = 1; ; attempt++) {
    try {
      return lockDataDir(dataDir);
    } catch (e) {
      if (attempt >= LOCK_TRIES || !isTesseraError(e) || e.code !== 'TESSERA_ERR_CP_ALREADY_RUNNING') throw e;
      // The pause holds the process (a start in progress), as node:timers/promises' sleep did.
      await new Promise<void>((resolve) => timers.setTimeout(resolve, 25 + Math.floor(Math.random() * 50), 'keep-alive'));
    }
  }
}
