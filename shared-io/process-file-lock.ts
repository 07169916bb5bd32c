// A lock one process holds on a file for its life, decided by the kernel: an SQLite file held in EXCLUSIVE locking
// mode, i.e. a POSIX record lock, which the kernel drops however the holder ends (exit, crash, SIGKILL, a container
// killed). So no stale lock is left to judge and no PID is compared: a PID in a file says nothing after a restart
// (PIDs repeat, and a fresh container's PID 1 is the number the dead one wrote). A second process, or a second taker
// in this process, is refused at once. The file is never removed: unlinking a lock file others may have opened lets
// two processes lock two different files. Used for the control plane's data dir and a proxy's state dir.
// What is at the path is checked before SQLite opens it, because SQLite takes what it is given: it follows a
// symbolic link, and on a file it cannot open for writing (a read-only mount) it falls back to reading and "locks"
// it for every taker at once. So only a regular file of this user's, writable, is ever locked; anything else is
// refused with the reason (audit 56c F1). No descriptor of an existing file is opened here: closing one would drop
// every POSIX lock this process holds on it (a lock taken earlier by another taker in this process included).
import { accessSync, chmodSync, closeSync, constants, lstatSync, openSync, rmSync, type Stats } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { errnoReason } from './read-named-file.js';

export interface FileLock {
  readonly file: string;
  /** Lets the next process have it; idempotent. */
  release(): void;
}

/**
 * Why a lock could not be taken: `held` by another taker; `foreign`, something at the path that is no lock file of
 * this user's (a directory, FIFO, socket or device, a symbolic link, another user's file, a file that is no SQLite
 * database), never followed, taken over or removed; `readonly`, the file can be neither made nor opened for writing
 * (a read-only file system, or a directory this process may not write in); `unusable`, anything else.
 */
export class FileLockRefused extends Error {
  constructor(
    readonly why: 'held' | 'foreign' | 'readonly' | 'unusable',
    readonly file: string,
    readonly detail: string,
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

/**
 * Takes `file`'s lock (creating it 0600), or throws FileLockRefused. The rollback journal SQLite would keep beside it
 * for the life of the holder (`<file>-journal`, made under the umask: 0644 in a dir of 0600 files) is kept in memory
 * instead: the lock writes nothing worth a journal (audit 56c F2). One an earlier version left (it stayed after a
 * SIGKILL) is removed once the lock is held: no other taker can be using it then.
 */
export function lockFile(file: string): FileLock {
  const vetted = vet(file);
  let db: DatabaseSync | undefined;
  try {
    // timeout 0: a held lock answers SQLITE_BUSY at once instead of being waited for.
    db = new DatabaseSync(file, { timeout: 0 });
    // EXCLUSIVE locking mode keeps the lock BEGIN EXCLUSIVE takes after COMMIT, until the connection closes.
    db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = MEMORY; BEGIN EXCLUSIVE; COMMIT;');
  } catch (e) {
    closeQuietly(db);
    const errcode = (e as { errcode?: unknown }).errcode;
    const primary = typeof errcode === 'number' ? errcode & 0xff : undefined;
    if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) throw new FileLockRefused('held', file, 'is locked', { cause: e });
    const why = String((e as { errstr?: unknown }).errstr ?? (e as Error).message);
    if (primary === SQLITE_NOTADB || primary === SQLITE_CORRUPT) throw new FileLockRefused('foreign', file, `is not a lock file (SQLite: ${why})`, { cause: e });
    throw new FileLockRefused('unusable', file, why, { cause: e });
  }
  // What SQLite opened is what was checked: a file swapped in between (by whoever can write the directory) is not.
  const now = lstatOrUndefined(file);
  if (!now || now.dev !== vetted.dev || now.ino !== vetted.ino) {
    closeQuietly(db);
    throw new FileLockRefused('foreign', file, 'was replaced while it was being locked');
  }
  try {
    rmSync(`${file}-journal`, { force: true });
  } catch {
    // A directory by that name, say: nothing uses it (the journal is in memory), so it does not stand in the way.
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

/** The file to lock, made 0600 when missing: a regular file of this user's that it can write, or FileLockRefused. */
function vet(file: string): Stats {
  let st = lstatOrUndefined(file);
  if (!st) {
    try {
      // A new file: no lock is held on it, so closing this descriptor drops none.
      closeSync(openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0), 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw byErrno(file, e, 'cannot be created', ['EROFS', 'EACCES']);
      // Made meanwhile by another taker: checked as any existing file.
    }
    try {
      st = lstatSync(file);
    } catch (e) {
      throw byErrno(file, e, 'cannot be read', []);
    }
  }
  if (st.isSymbolicLink()) throw new FileLockRefused('foreign', file, 'is a symbolic link (a lock is taken on a file of its own, never through a link)');
  if (!st.isFile()) throw new FileLockRefused('foreign', file, `is ${kindOf(st)}, not a lock file`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new FileLockRefused('foreign', file, `is owned by uid ${st.uid}, not this process's (${uid})`);
  try {
    if ((st.mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  } catch (e) {
    throw byErrno(file, e, 'cannot be made 0600', ['EROFS']);
  }
  try {
    // SQLite would open a file it cannot write read-only, and every taker would "hold" it.
    accessSync(file, constants.W_OK);
  } catch (e) {
    throw byErrno(file, e, 'cannot be written', ['EROFS']);
  }
  return st;
}

/** An errno failure as a refusal: `readonly` for the errnos given, `unusable` otherwise. */
function byErrno(file: string, e: unknown, what: string, readonly: readonly string[]): FileLockRefused {
  const errno = (e as NodeJS.ErrnoException).code ?? '';
  return new FileLockRefused(readonly.includes(errno) ? 'readonly' : 'unusable', file, `${what}: ${errnoReason(e, 'failed')}`, { cause: e });
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

function closeQuietly(db: DatabaseSync | undefined): void {
  try {
    db?.close();
  } catch {
    // the refusal the caller throws is what matters
  }
}
