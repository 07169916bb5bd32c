// One control plane per data dir, decided by the kernel before anything in the dir is touched: two processes on one
// dir would each create or load a CA and fork it. <dataDir>/control-plane.lock is an SQLite file held in EXCLUSIVE
// locking mode for the life of the process, i.e. a POSIX record lock, which the kernel drops however the holder ends
// (exit, crash, SIGKILL, a container killed). So no stale lock is left to judge and no PID is compared: a PID in a
// file says nothing after a restart (PIDs repeat, and a fresh container's PID 1 is the number the dead one wrote).
// A second process, or a second start in this process, is refused at once. The file is never removed: unlinking a
// lock file others may have opened lets two processes lock two different files.
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { TesseraError } from '../../../common/errors.js';

export const LOCK_FILE = 'control-plane.lock';

export interface DataDirLock {
  readonly file: string;
  /** Lets the next control plane have the data dir; idempotent. */
  release(): void;
}

/** SQLite's result codes for a lock another connection holds. */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** Takes the data dir's lock, or throws TESSERA_ERR_CP_ALREADY_RUNNING (held) / TESSERA_ERR_CP_DATA_DIR (unusable). */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE);
  let db: DatabaseSync | undefined;
  try {
    // timeout 0: a held lock answers SQLITE_BUSY at once instead of being waited for.
    db = new DatabaseSync(file, { timeout: 0 });
    // EXCLUSIVE locking mode keeps the lock BEGIN EXCLUSIVE takes after COMMIT, until the connection closes.
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;');
    chmodSync(file, 0o600);
  } catch (e) {
    try {
      db?.close();
    } catch {
      // the refusal below is what matters
    }
    const errcode = (e as { errcode?: unknown }).errcode;
    const primary = typeof errcode === 'number' ? errcode & 0xff : undefined;
    if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) {
      throw new TesseraError('TESSERA_ERR_CP_ALREADY_RUNNING', `${file} is locked: another control plane serves this data dir`, { file }, { cause: e });
    }
    const why = String((e as { errstr?: unknown }).errstr ?? (e as Error).message);
    // Not an SQLite file: nothing can hold it as this lock, so removing it is safe.
    const hint = primary === SQLITE_NOTADB || primary === SQLITE_CORRUPT ? ' (not a lock file a control plane made: remove it)' : '';
    throw new TesseraError('TESSERA_ERR_CP_DATA_DIR', `${file}: cannot take the data dir's lock: ${why}${hint}`, { file }, { cause: e });
  }
  const held = db;
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}
