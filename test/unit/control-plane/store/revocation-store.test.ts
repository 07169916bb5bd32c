// The revocation store and schema version 2: bans survive a reopen, are idempotent and lifted exactly once; a
// data dir of schema 1 is upgraded in place (its join tokens kept, revocable afterwards).
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { MIGRATIONS, openDatabase } from '../../../../control-plane/src/store/database.js';
import { type Ban, RevocationStore } from '../../../../control-plane/src/store/revocation-store.js';
import { TokenStore, hashToken } from '../../../../control-plane/src/store/token-store.js';
import { makeTempDir } from '../../../helpers/run.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const ban = (kind: Ban['kind'], value: string, extra: Partial<Ban> = {}): Ban => ({ kind, value, reason: 'stolen key', createdBy: 'ops', createdAtMs: 1_000, notAfterMs: null, ...extra });

describe('RevocationStore', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => cleanup());

  test('a ban survives closing and reopening the database', () => {
    const file = join(dir, 'tessera.db');
    const db = openDatabase(file);
    expect(new RevocationStore(db).add(ban('spiffe_id', ID))).toBe(true);
    db.close();
    const again = openDatabase(file);
    expect(new RevocationStore(again).find('spiffe_id', ID)).toEqual(ban('spiffe_id', ID));
    again.close();
  });

  test('banning twice keeps the first ban; an ID and a serial of the same text are different bans', () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new RevocationStore(db);
    expect(store.add(ban('serial', '0a11'))).toBe(true);
    expect(store.add(ban('serial', '0a11', { reason: 'again', createdAtMs: 9_000 }))).toBe(false);
    expect(store.find('serial', '0a11')?.reason).toBe('stolen key');
    expect(store.find('spiffe_id', '0a11')).toBeUndefined();
    expect(store.all()).toHaveLength(1);
    db.close();
  });

  test('lift removes the ban once; a second lift reports nothing removed', () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new RevocationStore(db);
    store.add(ban('spiffe_id', ID));
    expect(store.remove('spiffe_id', ID)).toBe(true);
    expect(store.remove('spiffe_id', ID)).toBe(false);
    expect(store.find('spiffe_id', ID)).toBeUndefined();
    db.close();
  });

  test('live() leaves out serial bans whose SVID has expired, never ID bans', () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const store = new RevocationStore(db);
    store.add(ban('serial', '01', { notAfterMs: 5_000 }));
    store.add(ban('serial', '02'));
    store.add(ban('spiffe_id', ID));
    expect(store.live(4_999).map((b) => b.value)).toEqual(['01', '02', ID]);
    expect(store.live(5_000).map((b) => b.value)).toEqual(['02', ID]);
    expect(store.all()).toHaveLength(3);
    db.close();
  });

  test('a schema-1 database is upgraded: its join tokens stay, and become revocable', () => {
    const file = join(dir, 'tessera.db');
    const v1 = new DatabaseSync(file);
    v1.exec(MIGRATIONS[0]!);
    v1.exec('PRAGMA user_version = 1');
    v1.prepare('INSERT INTO join_tokens (hash, spiffe_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)').run(hashToken('tok'), ID, 0, 10_000);
    v1.close();
    const db = openDatabase(file);
    expect((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(MIGRATIONS.length);
    const tokens = new TokenStore(db);
    expect(tokens.find(hashToken('tok'))).toMatchObject({ spiffeId: ID, usedAtMs: null, revokedAtMs: null });
    expect(tokens.revoke(hashToken('tok'), 2_000)).toBe(true);
    expect(tokens.revoke(hashToken('tok'), 3_000)).toBe(false);
    // A revoked token can no longer be spent, however the race goes.
    expect(tokens.spend(hashToken('tok'), 2_500)).toBe(false);
    expect(new RevocationStore(db).all()).toEqual([]);
    db.close();
  });

  test('a used token cannot be revoked; tokens are found by hash prefix, at most two', () => {
    const db = openDatabase(join(dir, 'tessera.db'));
    const tokens = new TokenStore(db);
    const rec = tokens.create('used-token', ID, 0, 10_000);
    expect(tokens.spend(rec.hash, 1)).toBe(true);
    expect(tokens.revoke(rec.hash, 2)).toBe(false);
    expect(tokens.findByPrefix(rec.hash.slice(0, 12)).map((t) => t.hash)).toEqual([rec.hash]);
    expect(tokens.findByPrefix('')).toHaveLength(1);
    tokens.create('another', ID, 0, 10_000);
    expect(tokens.findByPrefix('')).toHaveLength(2);
    db.close();
  });
});
