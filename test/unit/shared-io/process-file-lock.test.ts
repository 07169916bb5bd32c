// The kernel lock of a state or data dir (shared-io/process-file-lock.ts) against what may be at its path (audit 56c
// F1): only a regular file of this user's that it can write is locked. A directory, a FIFO, a socket, a symbolic link,
// another user's file and a file that is no SQLite database are `foreign` (never followed, taken over or removed); a
// read-only mount is `readonly`, never a "lock" every taker holds at once (SQLite's read-only fallback); an empty
// file is simply used. Checking the path never drops a lock this process already holds on it. The lock file is the
// only file it leaves, 0600: no SQLite journal beside it (F2).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type FileLock, FileLockRefused, lockFile } from '../../../shared-io/process-file-lock.js';
import { startTestProcess } from '../../helpers/ready-process.js';
import { canMount } from '../../helpers/secret-mount.js';
import { tempDirPerTest } from '../../helpers/temp-dir.js';

const tmp = tempDirPerTest();
const isRoot = process.getuid?.() === 0;

/** What taking the lock gives: 'locked' (released again at once), or the refusal's `why` and message. */
function take(file: string): { why: string; message: string } {
  try {
    lockFile(file).release();
    return { why: 'locked', message: '' };
  } catch (e) {
    if (!(e instanceof FileLockRefused)) throw e;
    return { why: e.why, message: e.message };
  }
}

/** Whether another process can take the lock of `file` now (as a second control plane or proxy would try). */
async function otherProcessTakes(file: string): Promise<boolean> {
  const code = `const { DatabaseSync } = require('node:sqlite'); try { const db = new DatabaseSync(${JSON.stringify(file)}, { timeout: 0 }); db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;'); console.log('TOOK'); } catch (e) { console.log('REFUSED ' + e.errcode); }`;
  const p = await startTestProcess({ name: 'lock taker', command: process.execPath, args: ['-e', code] });
  await p.exited;
  return p.stdout().includes('TOOK');
}

/** `src` bind-mounted read-only at `dst` for `fn`, then unmounted. */
async function readOnlyMount<T>(src: string, dst: string, fn: () => Promise<T> | T): Promise<T> {
  mkdirSync(dst, { recursive: true });
  execFileSync('mount', ['--bind', '-o', 'ro', src, dst], { stdio: 'ignore' });
  try {
    return await fn();
  } finally {
    execFileSync('umount', [dst], { stdio: 'ignore' });
  }
}

describe('lockFile', () => {
  test('absent: made 0600 and locked; an empty file (a lock never used) is used as it is', () => {
    const file = join(tmp.dir, 'a.lock');
    expect(take(file).why).toBe('locked');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const empty = join(tmp.dir, 'empty.lock');
    writeFileSync(empty, '', { mode: 0o644 });
    expect(take(empty).why).toBe('locked');
    expect(statSync(empty).mode & 0o777).toBe(0o600);
  });

  test('what is no lock file of this user\'s is refused as foreign, named, and left where it is', async () => {
    const other = join(tmp.dir, 'elsewhere.lock');
    expect(take(other).why).toBe('locked');
    const server = net.createServer();
    const socketFile = join(tmp.dir, 'socket.lock');
    await new Promise<void>((r) => server.listen(socketFile, r));
    try {
      const cases: [string, (f: string) => void, RegExp][] = [
        ['text.lock', (f) => writeFileSync(f, 'left here by something else, not an SQLite file\n'.repeat(20), { mode: 0o600 }), /is not a lock file/],
        ['dir.lock', (f) => mkdirSync(f), /is a directory/],
        ['fifo.lock', (f) => execFileSync('mkfifo', [f]), /is a FIFO/],
        ['link.lock', (f) => symlinkSync(other, f), /is a symbolic link/],
        ['dangling.lock', (f) => symlinkSync(join(tmp.dir, 'nowhere', 'x.lock'), f), /is a symbolic link/],
        ['socket.lock', () => {}, /is a socket/],
      ];
      for (const [name, make, reason] of cases) {
        const file = join(tmp.dir, name);
        make(file);
        const before = lstatSync(file);
        for (let i = 0; i < 2; i++) {
          const r = take(file);
          expect(r.why, name).toBe('foreign');
          expect(r.message, name).toContain(file);
          expect(r.message, name).toMatch(reason);
        }
        // Not followed, replaced or removed: the same thing is still there.
        expect(lstatSync(file).ino, name).toBe(before.ino);
      }
      // The link's target was never taken through it: it is still free.
      expect(await otherProcessTakes(other)).toBe(true);
      expect(existsSync(join(tmp.dir, 'nowhere'))).toBe(false);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test.skipIf(!isRoot)('a lock file of another user is foreign, even to root', () => {
    const file = join(tmp.dir, 'theirs.lock');
    expect(take(file).why).toBe('locked');
    chownSync(file, 65534, 65534);
    const r = take(file);
    expect(r.why).toBe('foreign');
    expect(r.message).toMatch(/is owned by uid 65534, not this process's \(0\)/);
  });

  test('held by a taker in this process: a second is refused, and checking the path has not dropped the first one\'s lock', async () => {
    const file = join(tmp.dir, 'held.lock');
    const first: FileLock = lockFile(file);
    try {
      expect(take(file).why).toBe('held');
      // A descriptor opened and closed on the file would have dropped this process's lock: another process would take it.
      expect(await otherProcessTakes(file)).toBe(false);
    } finally {
      first.release();
    }
    expect(await otherProcessTakes(file)).toBe(true);
  });

  test('while held, the lock file is the only file it makes (0600, no 0644 journal); a journal an earlier version left is removed (audit 56c F2)', async () => {
    const file = join(tmp.dir, 'j.lock');
    const lock = lockFile(file);
    try {
      expect(readdirSync(tmp.dir)).toEqual(['j.lock']);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      lock.release();
    }
    // What an earlier version's holder left when SIGKILLed: the journal of its EXCLUSIVE locking mode, 0644.
    const old = join(tmp.dir, 'old.lock');
    const code = `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(${JSON.stringify(old)}); db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;'); console.log('held'); setInterval(() => {}, 1000);`;
    const holder = await startTestProcess({ name: 'old lock holder', command: process.execPath, args: ['-e', code], ready: { line: 'held' }, readyTimeoutMs: 10_000 });
    await holder.stop({ signal: 'SIGKILL' });
    expect(statSync(`${old}-journal`).mode & 0o777).toBe(0o644 & ~process.umask());
    const again = lockFile(old);
    try {
      expect(existsSync(`${old}-journal`)).toBe(false);
      expect(statSync(old).mode & 0o777).toBe(0o600);
    } finally {
      again.release();
    }
  });

  test.skipIf(!canMount())('on a read-only mount: readonly for every taker, with or without a lock file there (never a lock two hold at once)', async () => {
    const src = join(tmp.dir, 'src');
    mkdirSync(src);
    // A lock file an earlier start left, then the directory mounted read-only (SQLite would open it read-only and let
    // every taker "hold" it).
    expect(take(join(src, 'kept.lock')).why).toBe('locked');
    chmodSync(join(src, 'kept.lock'), 0o600);
    await readOnlyMount(src, join(tmp.dir, 'ro'), () => {
      for (const name of ['kept.lock', 'new.lock']) {
        const file = join(tmp.dir, 'ro', name);
        for (let i = 0; i < 2; i++) {
          const r = take(file);
          expect(r.why, name).toBe('readonly');
          expect(r.message, name).toContain('read-only file system (EROFS)');
        }
      }
    });
    expect(readdirSync(src)).toEqual(['kept.lock']);
  });
});
