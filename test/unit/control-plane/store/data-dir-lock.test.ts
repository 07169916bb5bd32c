// The data dir lock (audit F5): held for the life of the holder, refused at once to anyone else (in this process or
// another), free again as soon as the holder releases it or dies however it dies (SIGKILL: no stale lock to judge,
// no PID compared), owner-only, and a file that is not a lock is named rather than taken over.
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { LOCK_FILE, lockDataDir } from '../../../../control-plane/src/store/data-dir-lock.js';
import { startTestProcess } from '../../../helpers/ready-process.js';
import { makeTempDir } from '../../../helpers/run.js';

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

  test('a data dir that cannot hold the file: TESSERA_ERR_CP_DATA_DIR naming it', () => {
    expect(codeOf(() => lockDataDir(join(dir, 'missing', 'deeper')))).toBe('TESSERA_ERR_CP_DATA_DIR');
  });
});
