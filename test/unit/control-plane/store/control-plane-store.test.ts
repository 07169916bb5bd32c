// The store opened as one: the SQLite file and its WAL side files owner-only, the schema at its current version
// (a reopen migrates nothing twice), the snapshot-version counter growing across restarts, and a database path
// that cannot be opened refused with a startup code.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { DATABASE_FILE, openControlPlaneStore } from '../../../../control-plane/src/store/control-plane-store.js';
import { MIGRATIONS, openDatabase } from '../../../../control-plane/src/store/database.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('openControlPlaneStore', () => {
  const tmp = tempDirPerTest();

  test('database files are 0600 and the schema is at the last migration', () => {
    const s = openControlPlaneStore(tmp.dir);
    s.audit.record(0, { event: 'x' });
    s.close();
    for (const f of [DATABASE_FILE, 'audit.log']) expect(statSync(join(tmp.dir, f)).mode & 0o777).toBe(0o600);
    chmodSync(join(tmp.dir, DATABASE_FILE), 0o644);
    openControlPlaneStore(tmp.dir).close();
    expect(statSync(join(tmp.dir, DATABASE_FILE)).mode & 0o777).toBe(0o600);
    const db = openDatabase(join(tmp.dir, DATABASE_FILE));
    expect((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(MIGRATIONS.length);
    db.close();
  });

  test('the meta counter keeps growing across restarts', () => {
    let s = openControlPlaneStore(tmp.dir);
    expect(s.meta.get('config.snapshot_version')).toBeUndefined();
    expect(s.meta.increment('config.snapshot_version')).toBe(1);
    expect(s.meta.increment('config.snapshot_version')).toBe(2);
    s.close();
    s = openControlPlaneStore(tmp.dir);
    expect(s.meta.increment('config.snapshot_version')).toBe(3);
    expect(s.meta.get('config.snapshot_version')).toBe('3');
    s.close();
  });

  test('a database path that is a directory is refused with TESSERA_ERR_CP_START_FAILED naming it', () => {
    mkdirSync(join(tmp.dir, DATABASE_FILE));
    try {
      openControlPlaneStore(tmp.dir);
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e) && e.code).toBe('TESSERA_ERR_CP_START_FAILED');
      expect(String((e as Error).message)).toContain(join(tmp.dir, DATABASE_FILE));
    }
  });
});
