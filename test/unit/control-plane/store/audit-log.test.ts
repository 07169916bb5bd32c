// The audit trail: each record is one JSON line in audit.log (0600, appended synchronously, so it is on disk when
// record() returns) and one row the admin views read back newest first, filtered by event prefix.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SqliteAuditLog } from '../../../../control-plane/src/store/sqlite/sqlite-audit-log.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

describe('SqliteAuditLog', () => {
  const tmp = tempDirPerTest();

  test('a record is a complete JSON line on disk when record() returns, with ts and a readable notAfter', async () => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const file = join(tmp.dir, 'audit.log');
    const log = new SqliteAuditLog(db, file);
    log.record(Date.UTC(2026, 0, 2, 3, 4, 5), { event: 'svid.issued', result: 'issued', spiffeId: 'spiffe://example.org/web', serial: '0a', notAfterMs: Date.UTC(2026, 0, 2, 4, 4, 5), caller: '127.0.0.1:5' });
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const expected = {
      ts: '2026-01-02T03:04:05.000Z',
      event: 'svid.issued',
      result: 'issued',
      spiffeId: 'spiffe://example.org/web',
      serial: '0a',
      notAfterMs: Date.UTC(2026, 0, 2, 4, 4, 5),
      notAfter: '2026-01-02T04:04:05.000Z',
      caller: '127.0.0.1:5',
    };
    expect(JSON.parse(lines[0]!)).toEqual(expected);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The row is there too, as the same JSON, once flush() resolves.
    await log.flush();
    expect(await log.recent('svid.')).toEqual([expected]);
    log.close();
    db.close();
  });

  test('recent() filters by prefix, newest first, bounded by the limit', async () => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, join(tmp.dir, 'audit.log'));
    for (let i = 0; i < 5; i++) log.record(i, { event: i % 2 ? 'ca.prepared' : 'svid.issued', n: i });
    expect((await log.recent('ca.')).map((e) => e['n'])).toEqual([3, 1]);
    expect((await log.recent('svid.', 2)).map((e) => e['n'])).toEqual([4, 2]);
    expect(await log.recent('token.')).toEqual([]);
    log.close();
    db.close();
  });

  test('an existing trail is appended to, never truncated', () => {
    const file = join(tmp.dir, 'audit.log');
    writeFileSync(file, '{"event":"earlier"}\n{"event":"before"}\n');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file);
    log.record(0, { event: 'ca.created' });
    log.close();
    db.close();
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').map((l) => (l ? JSON.parse(l).event : ''))).toEqual(['earlier', 'before', 'ca.created', '']);
  });

  test('a line torn by a crash mid-append stays on its own line; the next record is whole JSON', () => {
    const file = join(tmp.dir, 'audit.log');
    writeFileSync(file, '{"event":"whole"}\n{"event":"cut sho');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file);
    log.record(0, { event: 'ca.created' });
    log.close();
    db.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toEqual(['{"event":"whole"}', '{"event":"cut sho', expect.any(String), '']);
    expect(JSON.parse(lines[2]!).event).toBe('ca.created');
  });

  const events = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).event as string);

  test('rotation: a trail renamed or removed away is let go and audit.log made again (0600); copytruncate keeps appending', () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file);
    log.record(0, { event: 'one' });
    renameSync(file, `${file}.1`); // logrotate's default: rename, then the writer makes a new file
    log.record(1, { event: 'two' });
    expect(events(`${file}.1`)).toEqual(['one']);
    expect(events(file)).toEqual(['two']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    unlinkSync(file);
    log.record(2, { event: 'three' });
    expect(events(file)).toEqual(['three']);
    truncateSync(file, 0); // copytruncate: the same file, emptied
    log.record(3, { event: 'four' });
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify({ ts: new Date(3).toISOString(), event: 'four' })}\n`);
    log.close();
    db.close();
  });

  test('rotation: a FIFO, a directory or a symbolic link in the file\'s place fails that event, coded and at once; a regular file again is used', () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file);
    log.record(0, { event: 'one' });
    const elsewhere = join(tmp.dir, 'elsewhere.log');
    const planted: [string, () => void][] = [
      ['a FIFO nobody reads (a write would block every API)', () => execFileSync('mkfifo', [file])],
      ['a directory', () => mkdirSync(file)],
      ['a symbolic link out of the data dir', () => symlinkSync(elsewhere, file)],
    ];
    renameSync(file, `${file}.1`);
    for (const [what, plant] of planted) {
      plant();
      expect(() => log.record(1, { event: 'refused' }), what).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_STORE_IO' }));
      rmSync(file, { recursive: true });
    }
    expect(() => readFileSync(elsewhere)).toThrow();
    log.record(2, { event: 'two' });
    expect(events(file)).toEqual(['two']);
    log.close();
    db.close();
  });

  test('prune deletes the oldest rows before a time, at most maxRows per call; the file keeps every line', async () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file);
    for (let i = 0; i < 10; i++) log.record(1_000 * i, { event: 'svid.issued', n: i });
    expect(await log.prune(5_000, 3)).toBe(3);
    expect((await log.recent('svid.')).map((e) => e['n'])).toEqual([9, 8, 7, 6, 5, 4, 3]);
    expect(await log.prune(5_000, 100)).toBe(2);
    expect(await log.prune(5_000, 100)).toBe(0);
    expect((await log.recent('svid.')).map((e) => e['n'])).toEqual([9, 8, 7, 6, 5]);
    expect(events(file)).toHaveLength(10);
    log.close();
    db.close();
  });
});
