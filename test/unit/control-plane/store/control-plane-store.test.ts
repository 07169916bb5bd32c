// The SQLite store opened as one: the database file and its WAL side files owner-only, the schema at its current
// version (a reopen migrates nothing twice, a schema-3 file gains the reports table, a schema-4 file's registrations
// an empty owner, a schema-9 file's SVIDs no chain), the counters growing across
// restarts and atomic, and a database path that cannot be opened refused with a startup code.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { AUDIT_FILE, DATABASE_FILE, openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import { MIGRATIONS, openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('openSqliteStore', () => {
  const tmp = tempDirPerTest();

  test('database files are 0600 and the schema is at the last migration', async () => {
    const s = await openSqliteStore(tmp.dir);
    expect(s.kind).toBe('sqlite');
    s.audit.record(0, { event: 'x' });
    await s.close();
    for (const f of [DATABASE_FILE, AUDIT_FILE]) expect(statSync(join(tmp.dir, f)).mode & 0o777).toBe(0o600);
    chmodSync(join(tmp.dir, DATABASE_FILE), 0o644);
    await (await openSqliteStore(tmp.dir)).close();
    expect(statSync(join(tmp.dir, DATABASE_FILE)).mode & 0o777).toBe(0o600);
    const db = openDatabase(join(tmp.dir, DATABASE_FILE));
    expect((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(MIGRATIONS.length);
    expect(MIGRATIONS.length).toBe(10);
    db.close();
  });

  test('a schema-3 database is upgraded in place: its rows stay, the reports table is added', async () => {
    const file = join(tmp.dir, DATABASE_FILE);
    const v3 = new DatabaseSync(file);
    for (const m of MIGRATIONS.slice(0, 3)) v3.exec(m);
    v3.exec('PRAGMA user_version = 3');
    v3.prepare("INSERT INTO meta (key, value) VALUES ('config.snapshot_version', '41')").run();
    v3.close();
    const s = await openSqliteStore(tmp.dir);
    expect(await s.meta.increment('config.snapshot_version')).toBe(42);
    expect(await s.reports.list(0)).toEqual([]);
    await s.close();
  });

  test('a schema-4 database is upgraded in place: stored registrations stay, owned by nobody, with their time', async () => {
    const file = join(tmp.dir, DATABASE_FILE);
    const v4 = new DatabaseSync(file);
    for (const m of MIGRATIONS.slice(0, 4)) v4.exec(m);
    v4.exec('PRAGMA user_version = 4');
    const endpoint = JSON.stringify({ address: '127.0.0.1:15006', spiffe_id: 'spiffe://example.org/api', protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
    v4.prepare("INSERT INTO registrations VALUES ('s1', 'spiffe://example.org/api', 'api', '127.0.0.1:15006', ?, 1234)").run(endpoint);
    v4.close();
    const s = await openSqliteStore(tmp.dir);
    expect((await s.registrations.loadAll()).map((x) => [x.id, x.owner, x.heartbeatAtMs, x.registrations.length])).toEqual([['s1', '', 1234, 1]]);
    await s.close();
  });

  test('a schema-9 inventory is upgraded in place: its rows stay, without a chain, and are pruned by expiry like any', async () => {
    const file = join(tmp.dir, DATABASE_FILE);
    const v9 = new DatabaseSync(file);
    for (const m of MIGRATIONS.slice(0, 9)) v9.exec(m);
    v9.exec('PRAGMA user_version = 9');
    // One from before lineage (schema 7), its renewal from after (schema 8), still live at 5,000.
    const insert = v9.prepare("INSERT INTO issuances VALUES (?, 'spiffe://example.org/web', 'auth-1', 'i-1', 0, ?, 0, ?, ?, '127.0.0.1:1', ?)");
    insert.run('aa01', 1_000, 'join_token:abcd', 'attest', '');
    insert.run('aa02', 9_000, 'x509svid:aa01', 'renew', 'aa01');
    v9.close();
    const s = await openSqliteStore(tmp.dir);
    const row = await s.inventory.find('aa02');
    expect(row).toMatchObject({ serial: 'aa02', lineage: 'aa01' });
    expect(row).not.toHaveProperty('chain');
    expect(row).not.toHaveProperty('depth');
    expect((await s.inventory.renewalsOf('aa01')).map((r) => r.serial)).toEqual(['aa02']);
    expect(await s.inventory.prune(5_000, 100)).toBe(1);
    expect((await s.inventory.all()).map((r) => r.serial)).toEqual(['aa02']);
    expect(await s.inventory.prune(9_000, 100)).toBe(1);
    await s.close();
  });

  test('the meta counter keeps growing across restarts, and concurrent increments never repeat a value', async () => {
    let s = await openSqliteStore(tmp.dir);
    expect(await s.meta.get('config.snapshot_version')).toBeUndefined();
    expect(await s.meta.increment('config.snapshot_version')).toBe(1);
    expect(await s.meta.increment('config.snapshot_version')).toBe(2);
    await s.close();
    s = await openSqliteStore(tmp.dir);
    expect(await s.meta.increment('config.snapshot_version')).toBe(3);
    expect(await s.meta.get('config.snapshot_version')).toBe('3');
    const many = await Promise.all(Array.from({ length: 20 }, () => s.meta.increment('config.snapshot_version')));
    expect(new Set(many).size).toBe(20);
    expect(Math.min(...many)).toBe(4);
    expect(Math.max(...many)).toBe(23);
    await s.close();
  });

  test('close() is idempotent and waits for the audit queue', async () => {
    const s = await openSqliteStore(tmp.dir);
    s.audit.record(5, { event: 'token.created' });
    await Promise.all([s.close(), s.close()]);
    const again = await openSqliteStore(tmp.dir);
    expect((await again.audit.recent('token.')).map((e) => e['event'])).toEqual(['token.created']);
    await again.close();
  });

  test('a database path that is a directory is refused with TESSERA_ERR_CP_START_FAILED naming it', async () => {
    mkdirSync(join(tmp.dir, DATABASE_FILE));
    try {
      await openSqliteStore(tmp.dir);
      expect.unreachable();
    } catch (e) {
      expect(isTesseraError(e) && e.code).toBe('TESSERA_ERR_CP_START_FAILED');
      expect(String((e as Error).message)).toContain(join(tmp.dir, DATABASE_FILE));
    }
  });
});
