// The audit trail: each record is one JSON line in audit.log (0600, appended synchronously, so it is on disk when
// record() returns) and one row the admin views read back newest first, filtered by event prefix. The file is cut
// by size (audit.logMaxBytes) into audit.log.1, whole lines only (audit 53c F4).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SqliteAuditLog } from '../../../../control-plane/src/store/sqlite/sqlite-audit-log.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
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

  /** Each file's lines, parsed: every one must be whole JSON (a split line would not parse). */
  const numbered = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).n as number);
  const MAX = 65_536;

  test('size: before a line would pass maxBytes, audit.log becomes audit.log.1 (the older .1 dropped) and a new one starts; whole lines, none lost, 0600', () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file, MAX);
    // ~330-byte lines, as svid.issued lines are: 1,000 of them is five files' worth, so .1 is replaced several times.
    const pad = 'x'.repeat(250);
    let rotations = 0;
    let last = statSync(file).ino;
    for (let n = 0; n < 1_000; n++) {
      log.record(n, { event: 'svid.issued', n, spiffeId: `spiffe://example.org/${pad}` });
      const st = statSync(file);
      if (st.ino !== last) rotations++;
      last = st.ino;
      expect(st.size).toBeLessThanOrEqual(MAX);
    }
    expect(rotations).toBeGreaterThanOrEqual(4);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('audit.log')).sort()).toEqual(['audit.log', 'audit.log.1']);
    for (const f of [file, `${file}.1`]) {
      expect(statSync(f).mode & 0o777, f).toBe(0o600);
      expect(statSync(f).size, f).toBeLessThanOrEqual(MAX);
      expect(readFileSync(f, 'utf8').endsWith('\n'), f).toBe(true);
    }
    // .1 then audit.log: one unbroken run of numbers ending at the last record, the .1 nearly full.
    const kept = [...numbered(`${file}.1`), ...numbered(file)];
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 1_000 - kept.length + i));
    expect(statSync(`${file}.1`).size).toBeGreaterThan(MAX - 400);
    log.close();
    db.close();
  });

  test('size: a trail already larger at start is cut at the first event; a line longer than maxBytes is written whole, alone', () => {
    const file = join(tmp.dir, 'audit.log');
    writeFileSync(file, `${JSON.stringify({ n: -1, pad: 'y'.repeat(MAX) })}\n`, { mode: 0o600 });
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file, MAX);
    log.record(0, { event: 'ca.created', n: 0 });
    expect(numbered(`${file}.1`)).toEqual([-1]);
    expect(numbered(file)).toEqual([0]);
    log.record(1, { event: 'svid.issued', n: 1, spiffeId: `spiffe://example.org/${'z'.repeat(MAX)}` });
    expect(numbered(`${file}.1`)).toEqual([0]);
    expect(numbered(file)).toEqual([1]);
    log.record(2, { event: 'svid.issued', n: 2 });
    expect(numbered(`${file}.1`)).toEqual([1]);
    expect(numbered(file)).toEqual([2]);
    log.close();
    db.close();
  });

  test('size: a failed rotation fails that event, coded, with the trail as it was; the next event after the fault rotates', () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const log = new SqliteAuditLog(db, file, MAX);
    const pad = 'x'.repeat(1_000);
    let n = 0;
    while (statSync(file).size + 1_100 <= MAX) log.record(n, { event: 'svid.issued', n: n++, pad });
    mkdirSync(`${file}.1`); // rename(2) cannot replace a directory with a file
    expect(() => log.record(n, { event: 'svid.issued', n, pad })).toThrowError(expect.objectContaining({ code: expect.stringMatching(/^TESSERA_ERR_STORE_/) }));
    expect(numbered(file)).toEqual(Array.from({ length: n }, (_, i) => i));
    rmSync(`${file}.1`, { recursive: true });
    log.record(n, { event: 'svid.issued', n, pad });
    expect(numbered(`${file}.1`)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(numbered(file)).toEqual([n]);
    log.close();
    db.close();
  });

  test('size: 0 never cuts (the operator rotates); the store takes the limit as audit.logMaxBytes gives it, 64 MiB unset', async () => {
    const file = join(tmp.dir, 'audit.log');
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const never = new SqliteAuditLog(db, file, 0);
    const pad = 'x'.repeat(1_000);
    for (let n = 0; n < 100; n++) never.record(n, { event: 'svid.issued', n, pad });
    never.close();
    db.close();
    expect(statSync(file).size).toBeGreaterThan(MAX);
    expect(() => statSync(`${file}.1`)).toThrow();
    // The same oversized file under the default (64 MiB): kept as it is.
    const byDefault = await openSqliteStore(tmp.dir);
    byDefault.audit.record(100, { event: 'svid.issued', n: 100 });
    await byDefault.close();
    expect(numbered(file)).toHaveLength(101);
    // Under the store option: cut at the next event.
    const small = await openSqliteStore(tmp.dir, { auditLogMaxBytes: MAX });
    small.audit.record(101, { event: 'svid.issued', n: 101 });
    await small.close();
    expect(numbered(`${file}.1`)).toHaveLength(101);
    expect(numbered(file)).toEqual([101]);
  });
});
