// The SQLite revocation store and schema version 2: bans survive a reopen, are idempotent and lifted exactly once; a
// data dir of schema 1 is upgraded in place (its join tokens kept, revocable afterwards).
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { hashToken } from '../../../../control-plane/src/store/join-token.js';
import { MIGRATIONS, openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteInventoryStore } from '../../../../control-plane/src/store/sqlite/sqlite-inventory-store.js';
import { SqliteRevocationStore } from '../../../../control-plane/src/store/sqlite/sqlite-revocation-store.js';
import { SqliteTokenStore } from '../../../../control-plane/src/store/sqlite/sqlite-token-store.js';
import type { Ban, IssuedSvidRow } from '../../../../control-plane/src/store/store-contract.js';
import { makeTempDir } from '../../../helpers/run.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
/** The SVID a token is spent for (a token is spent only with one: SqliteInventoryStore.recordWithToken). */
const usedSvid: IssuedSvidRow = { serial: '0a', spiffeId: ID, authorityId: 'A', intermediateSerial: 'i1', notBeforeMs: 0, notAfterMs: 9_000, issuedAtMs: 1, attestedAs: 'join_token:x', kind: 'attest', caller: 'test' };
const ban = (kind: Ban['kind'], value: string, extra: Partial<Ban> = {}): Ban => ({ kind, value, reason: 'stolen key', createdBy: 'ops', createdAtMs: 1_000, notAfterMs: null, ...extra });

describe('SqliteRevocationStore', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => cleanup());

  test('a ban survives closing and reopening the database', async () => {
    const file = join(dir, 'tessera.db');
    const db = openDatabase(file);
    expect(await new SqliteRevocationStore(db).add(ban('spiffe_id', ID))).toBe(true);
    db.close();
    const again = openDatabase(file);
    expect(await new SqliteRevocationStore(again).find('spiffe_id', ID)).toEqual(ban('spiffe_id', ID));
    again.close();
  });

  test('banning twice keeps the first ban; an ID and a serial of the same text are different bans', async () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new SqliteRevocationStore(db);
    expect(await store.add(ban('serial', '0a11'))).toBe(true);
    expect(await store.add(ban('serial', '0a11', { reason: 'again', createdAtMs: 9_000 }))).toBe(false);
    expect((await store.find('serial', '0a11'))?.reason).toBe('stolen key');
    expect(await store.find('spiffe_id', '0a11')).toBeUndefined();
    expect(await store.all()).toHaveLength(1);
    db.close();
  });

  test('lift removes the ban once; a second lift reports nothing removed', async () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new SqliteRevocationStore(db);
    await store.add(ban('spiffe_id', ID));
    expect(await store.remove('spiffe_id', ID)).toBe(true);
    expect(await store.remove('spiffe_id', ID)).toBe(false);
    expect(await store.find('spiffe_id', ID)).toBeUndefined();
    db.close();
  });

  test('live() leaves out serial bans whose SVID has expired, never ID bans', async () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new SqliteRevocationStore(db);
    await store.add(ban('serial', '01', { notAfterMs: 5_000 }));
    await store.add(ban('serial', '02'));
    await store.add(ban('spiffe_id', ID));
    expect((await store.live(4_999)).map((b) => b.value)).toEqual(['01', '02', ID]);
    expect((await store.live(5_000)).map((b) => b.value)).toEqual(['02', ID]);
    expect(await store.all()).toHaveLength(3);
    db.close();
  });

  test('a schema-1 database is upgraded: its join tokens stay, and become revocable', async () => {
    const file = join(dir, 'tessera.db');
    const v1 = new DatabaseSync(file);
    v1.exec(MIGRATIONS[0]!);
    v1.exec('PRAGMA user_version = 1');
    v1.prepare('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)').run(hashToken('tok'), ID, 0, 10_000);
    v1.close();
    const db = openDatabase(file);
    expect((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(MIGRATIONS.length);
    const tokens = new SqliteTokenStore(db);
    expect(await tokens.find(hashToken('tok'))).toMatchObject({ spiffeId: ID, usedAtMs: null, revokedAtMs: null });
    expect(await tokens.revoke(hashToken('tok'), 2_000)).toBe(true);
    expect(await tokens.revoke(hashToken('tok'), 3_000)).toBe(false);
    // A revoked token can no longer be spent, however the race goes.
    expect(await new SqliteInventoryStore(db).recordWithToken(usedSvid, hashToken('tok'), 2_500)).toBe(false);
    expect(await new SqliteRevocationStore(db).all()).toEqual([]);
    db.close();
  });

  test('a used token cannot be revoked; tokens are found by hash prefix, at most two', async () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const tokens = new SqliteTokenStore(db);
    const rec = await tokens.create('used-token', ID, 0, 10_000);
    expect(await new SqliteInventoryStore(db).recordWithToken(usedSvid, rec.hash, 1)).toBe(true);
    expect(await tokens.revoke(rec.hash, 2)).toBe(false);
    expect((await tokens.findByPrefix(rec.hash.slice(0, 12))).map((t) => t.hash)).toEqual([rec.hash]);
    expect(await tokens.findByPrefix('')).toHaveLength(1);
    await tokens.create('another', ID, 0, 10_000);
    expect(await tokens.findByPrefix('')).toHaveLength(2);
    db.close();
  });
});
