// A lock one process holds on a file for its life, decided by the kernel: an SQLite file held in EXCLUSIVE locking
// mode, i.e. a POSIX record lock, which the kernel drops however the holder ends (exit, crash, SIGKILL, a container
// killed). So no stale lock is left to judge and no PID is compared: a PID in a file says nothing after a restart
// (PIDs repeat, and a fresh container's PID 1 is the number the dead one wrote). A second process, or a second taker
// in this process, is refused at once. The file is never removed: unlinking a lock file others may have opened lets
// two processes lock two different files. Used for the control plane's data dir and a proxy's state dir.
import { chmodSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';

export interface FileLock {
  readonly file: string;
  /** Lets the next process have it; idempotent. */
  release(): void;
}

/** Why a lock could not be taken: `held` by another taker, or the file `unusable` (with SQLite's words). */
export class FileLockRefused extends Error {
  constructor(
    readonly why: 'held' | 'unusable',
    readonly file: string,
    readonly detail: string,
    /** Not an SQLite file: nothing can hold it as a lock, so removing it is safe. */
    readonly foreign: boolean,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${detail}`, options);
  }
}

/** SQLite's result codes for a lock another connection holds, and for a file that is no database. */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** Takes `file`'s lock (creating it 0600), or throws FileLockRefused. */
export function lockFile(file: string): FileLock {
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
    if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) throw new FileLockRefused('held', file, 'is locked', false, { cause: e });
    const why = String((e as { errstr?: unknown }).errstr ?? (e as Error).message);
    throw new FileLockRefused('unusable', file, why, primary === SQLITE_NOTADB || primary === SQLITE_CORRUPT, { cause: e });
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
