// Store faults coded (audit F6): what node:sqlite really throws when the database is full, read-only, not a database
// or refuses a statement, and what a full disk does to audit.log, each becomes its TESSERA_ERR_STORE_* code naming
// the file; the SQLite store's views throw them coded and tell onFailure first (a damaged tessera.db under a running
// store: before, an uncoded error no one logged); which codes mean "cannot take writes".
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, test } from 'vitest';
import { isTesseraError, TesseraError } from '../../../../common/errors.js';
import { DATABASE_FILE, openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import { fileFault, sqliteFault, unwritableFault } from '../../../../control-plane/src/store/store-faults.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

describe('store faults', () => {
  const tmp = tempDirPerTest();

  test('node:sqlite errors: full, read-only, not a database, a constraint; each coded with the file named', () => {
    const file = join(tmp.dir, 'f.db');
    const db = new DatabaseSync(file);
    db.exec('CREATE TABLE t (x TEXT PRIMARY KEY)');
    db.exec('PRAGMA max_page_count = 3');
    const full = sqliteFault(thrown(() => {
      for (let i = 0; i < 50; i++) db.prepare('INSERT INTO t VALUES (?)').run(`${i}${'x'.repeat(2000)}`);
    }), file);
    expect(isTesseraError(full, 'TESSERA_ERR_STORE_FULL')).toBe(true);
    expect((full as Error).message).toContain(file);
    db.exec('PRAGMA max_page_count = 1000000');
    db.prepare('INSERT INTO t VALUES (?)').run('dup');
    const constraint = sqliteFault(thrown(() => db.prepare('INSERT INTO t VALUES (?)').run('dup')), file);
    expect(isTesseraError(constraint, 'TESSERA_ERR_STORE_FAILED')).toBe(true);
    expect((constraint as Error).message).toContain('UNIQUE');
    db.close();
    const ro = new DatabaseSync(file, { readOnly: true });
    expect(isTesseraError(sqliteFault(thrown(() => ro.prepare('INSERT INTO t VALUES (?)').run('y')), file), 'TESSERA_ERR_STORE_READ_ONLY')).toBe(true);
    ro.close();
    const junk = join(tmp.dir, 'junk.db');
    writeFileSync(junk, 'not sqlite '.repeat(100));
    expect(isTesseraError(sqliteFault(thrown(() => new DatabaseSync(junk).prepare('SELECT 1 FROM sqlite_master').all()), junk), 'TESSERA_ERR_STORE_CORRUPT')).toBe(true);
  });

  test('file errors: ENOSPC is FULL, EROFS READ_ONLY, EIO IO; other errors and coded ones pass as they are', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: failed, write`), { code });
    expect(isTesseraError(fileFault(errno('ENOSPC'), '/d/audit.log'), 'TESSERA_ERR_STORE_FULL')).toBe(true);
    expect(isTesseraError(fileFault(errno('EROFS'), '/d/audit.log'), 'TESSERA_ERR_STORE_READ_ONLY')).toBe(true);
    expect(isTesseraError(fileFault(errno('EIO'), '/d/audit.log'), 'TESSERA_ERR_STORE_IO')).toBe(true);
    const other = new TypeError('a bug');
    expect(sqliteFault(other, 'x')).toBe(other);
    const coded = new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(sqliteFault(coded, 'x')).toBe(coded);
  });

  test('cannot take writes: full, read-only, I/O, damaged, unreachable; not a conflict between replicas, not a refusal', () => {
    for (const code of ['TESSERA_ERR_STORE_FULL', 'TESSERA_ERR_STORE_READ_ONLY', 'TESSERA_ERR_STORE_IO', 'TESSERA_ERR_STORE_CORRUPT', 'TESSERA_ERR_STORE_UNAVAILABLE'] as const) {
      expect(unwritableFault(new TesseraError(code))).toBe(code);
    }
    expect(unwritableFault(new TesseraError('TESSERA_ERR_STORE_UNAVAILABLE', 'deadlock', { sqlstate: '40P01' }))).toBeNull();
    expect(unwritableFault(new TesseraError('TESSERA_ERR_STORE_FAILED'))).toBeNull();
    expect(unwritableFault(new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED'))).toBeNull();
    expect(unwritableFault(new Error('x'))).toBeNull();
  });

  test('a tessera.db damaged under the open store: its views throw TESSERA_ERR_STORE_CORRUPT and tell onFailure', async () => {
    const failures: { area: string; op: string; code: string | undefined }[] = [];
    const store = await openSqliteStore(tmp.dir, { onFailure: (area, op, e) => failures.push({ area, op, code: isTesseraError(e) ? e.code : undefined }) });
    try {
      await store.revocations.add({ kind: 'spiffe_id', value: 'spiffe://example.org/x', reason: 'r', createdBy: 'c', createdAtMs: 1, notAfterMs: null });
      // Into the main file, then every page but the first overwritten (the schema stays readable).
      const side = new DatabaseSync(join(tmp.dir, DATABASE_FILE));
      side.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      side.close();
      const fd = openSync(join(tmp.dir, DATABASE_FILE), 'r+');
      writeSync(fd, Buffer.alloc(4096 * 16, 0xa5), 0, 4096 * 16, 4096);
      closeSync(fd);
      const e = await store.revocations.all().then(() => undefined, (err: unknown) => err);
      expect(isTesseraError(e, 'TESSERA_ERR_STORE_CORRUPT'), String(e)).toBe(true);
      expect((e as Error).message).toContain(DATABASE_FILE);
      expect(failures).toContainEqual({ area: 'revocations', op: 'all', code: 'TESSERA_ERR_STORE_CORRUPT' });
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});
