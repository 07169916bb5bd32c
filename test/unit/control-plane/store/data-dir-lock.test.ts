// The data dir lock (audit F5): held for the life of the holder, refused at once to anyone else (in this process or
// another), free again as soon as the holder releases it or dies however it dies (SIGKILL: no stale lock to judge,
// no PID compared), owner-only, and anything at its path that is not a lock file of this user's (a file that is no
// SQLite database, a directory, a FIFO, a symbolic link, another user's file) or a read-only mount is named rather
// than taken over.
import { execFileSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { LOCK_FILE, lockDataDir } from '../../../../control-plane/src/store/data-dir-lock.js';
import { startTestProcess } from '../../../helpers/ready-process.js';
import { makeTempDir } from '../../../helpers/run.js';
import { canMount } from '../../../helpers/secret-mount.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isTesseraError(e) ? e.code : `not coded: ${String(e)}`;
  }
  return undefined;
}

/** Another process holding the lock file as a control plane does; resolves once it holds it. */
async function holderProcess(file: string): Promise<{ kill(): Promise<void> }> {
  const code = `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(${JSON.stringify(file)}); db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;'); console.log('held'); setInterval(() => {}, 1000);`;
  const p = await startTestProcess({ name: 'lock holder', command: process.execPath, args: ['-e', code], ready: { line: 'held' }, readyTimeoutMs: 10_000 });
  return {
    kill: async () => {
      await p.stop({ signal: 'SIGKILL' });
    },
  };
}

describe('lockDataDir', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await cleanup();
  });

  test('held: a second claim in this process is refused at once; released: it can be taken again', () => {
    const lock = lockDataDir(dir);
    expect(lock.file).toBe(join(dir, LOCK_FILE));
    expect(statSync(lock.file).mode & 0o777).toBe(0o600);
    expect(codeOf(() => lockDataDir(dir))).toBe('TESSERA_ERR_CP_ALREADY_RUNNING');
    lock.release();
    lock.release();
    const again = lockDataDir(dir);
    again.release();
  });

  test('held by another process: refused; that process SIGKILLed: taken at once (the kernel dropped its lock)', async () => {
    const holder = await holderProcess(join(dir, LOCK_FILE));
    try {
      expect(codeOf(() => lockDataDir(dir))).toBe('TESSERA_ERR_CP_ALREADY_RUNNING');
    } finally {
      await holder.kill();
    }
    lockDataDir(dir).release();
  });

  test('a lock file that is not one (overwritten) is named with TESSERA_ERR_CP_DATA_DIR, not taken over', () => {
    writeFileSync(join(dir, LOCK_FILE), 'x'.repeat(200));
    let err: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_CP_DATA_DIR')).toBe(true);
    expect((err as Error).message).toContain('remove it');
  });

  test('whatever else is at the path is named with TESSERA_ERR_CP_DATA_DIR and left as it is: never followed or taken (audit 56c F1)', async () => {
    const elsewhere = join(dir, 'elsewhere.lock');
    const cases: [string, (f: string) => void, RegExp][] = [
      ['a directory', (f) => mkdirSync(f), /is a directory, not a lock file .*remove it/],
      ['a FIFO', (f) => execFileSync('mkfifo', [f]), /is a FIFO, not a lock file .*remove it/],
      [
        'a symbolic link to a lock file',
        (f) => {
          writeFileSync(elsewhere, '', { mode: 0o600 });
          symlinkSync(elsewhere, f);
        },
        /is a symbolic link.*remove it/,
      ],
    ];
    if (process.getuid?.() === 0) {
      const theirs = (f: string) => {
        lockDataDir(dir).release();
        chownSync(f, 65534, 65534);
      };
      cases.push(["another user's lock file", theirs, /is owned by uid 65534.*remove it/]);
    }
    for (const [name, make, reason] of cases) {
      const file = join(dir, LOCK_FILE);
      rmSync(file, { recursive: true, force: true });
      make(file);
      const before = lstatSync(file).ino;
      let err: unknown;
      try {
        lockDataDir(dir).release();
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, 'TESSERA_ERR_CP_DATA_DIR'), `${name}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(reason);
      expect(lstatSync(file).ino).toBe(before);
    }
  });

  test.skipIf(!canMount())('a data dir on a read-only mount is refused, with its lock file or without (SQLite would "lock" it for every taker)', async () => {
    lockDataDir(dir).release();
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['--bind', '-o', 'ro', dir, ro], { stdio: 'ignore' });
    try {
      for (const d of [ro, join(ro, 'ro')]) {
        for (let i = 0; i < 2; i++) {
          let err: unknown;
          try {
            lockDataDir(d).release();
          } catch (e) {
            err = e;
          }
          expect(isTesseraError(err, 'TESSERA_ERR_CP_DATA_DIR'), String(err)).toBe(true);
          expect((err as Error).message).toContain('read-only file system (EROFS)');
        }
      }
    } finally {
      execFileSync('umount', [ro], { stdio: 'ignore' });
    }
  });

  test('a data dir that cannot hold the file: TESSERA_ERR_CP_DATA_DIR naming it', () => {
    expect(codeOf(() => lockDataDir(join(dir, 'missing', 'deeper')))).toBe('TESSERA_ERR_CP_DATA_DIR');
  });
});
