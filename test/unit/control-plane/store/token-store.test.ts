// Join tokens: only the hash is stored; a token is spent once (a second use, a use after expiry or after a revoke
// fails), revoked only while unused, found by a hash prefix, and forgotten after the keep period.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, test } from 'vitest';
import { hashToken, newJoinToken, tokenIdOf } from '../../../../control-plane/src/store/join-token.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteTokenStore } from '../../../../control-plane/src/store/sqlite/sqlite-token-store.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

describe('SqliteTokenStore', () => {
  const tmp = tempDirPerTest();
  const withStore = async (fn: (s: SqliteTokenStore, db: DatabaseSync) => Promise<void>) => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    try {
      await fn(new SqliteTokenStore(db), db);
    } finally {
      db.close();
    }
  };

  test('only the SHA-256 of the token is stored', () =>
    withStore(async (s, db) => {
      const token = newJoinToken();
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const rec = await s.create(token, ID, 1_000, 60_000);
      expect(rec).toEqual({ hash: hashToken(token), spiffeId: ID, createdAtMs: 1_000, expiresAtMs: 61_000, usedAtMs: null, revokedAtMs: null });
      const dump = JSON.stringify(db.prepare('SELECT * FROM join_tokens').all());
      expect(dump).not.toContain(token);
      expect(tokenIdOf(rec.hash)).toBe(rec.hash.slice(0, 12));
    }));

  test('a token is spent exactly once, and never after it expired', () =>
    withStore(async (s) => {
      const a = await s.create('a', ID, 0, 1_000);
      expect(await s.spend(a.hash, 500)).toBe(true);
      expect(await s.spend(a.hash, 600)).toBe(false);
      expect((await s.find(a.hash))?.usedAtMs).toBe(500);
      const b = await s.create('b', ID, 0, 1_000);
      expect(await s.spend(b.hash, 1_000)).toBe(false); // expiresAt is exclusive
      expect(await s.spend(hashToken('never created'), 0)).toBe(false);
    }));

  test('two spends of one token racing: exactly one wins', () =>
    withStore(async (s) => {
      const a = await s.create('race', ID, 0, 1_000);
      const results = await Promise.all([s.spend(a.hash, 10), s.spend(a.hash, 10), s.spend(a.hash, 11)]);
      expect(results.filter(Boolean)).toHaveLength(1);
    }));

  test('revoke wins only over an unused token; a revoked token cannot be spent', () =>
    withStore(async (s) => {
      const a = await s.create('a', ID, 0, 1_000);
      expect(await s.revoke(a.hash, 10)).toBe(true);
      expect(await s.revoke(a.hash, 11)).toBe(false);
      expect(await s.spend(a.hash, 12)).toBe(false);
      expect((await s.find(a.hash))?.revokedAtMs).toBe(10);
      const b = await s.create('b', ID, 0, 1_000);
      expect(await s.spend(b.hash, 5)).toBe(true);
      expect(await s.revoke(b.hash, 6)).toBe(false);
    }));

  test('findByPrefix returns the matching tokens, at most two (enough to call a prefix ambiguous)', () =>
    withStore(async (s) => {
      const recs = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((t) => s.create(t, ID, 0, 1_000)));
      const one = recs[0]!.hash;
      expect((await s.findByPrefix(one.slice(0, 12))).map((r) => r.hash)).toEqual([one]);
      expect(await s.findByPrefix('')).toHaveLength(2);
      expect(await s.findByPrefix('zz')).toEqual([]);
    }));

  test('prune forgets tokens expired for longer than the keep period only', () =>
    withStore(async (s) => {
      const old = await s.create('old', ID, 0, 1_000);
      const recent = await s.create('recent', ID, 0, 5_000);
      expect(await s.prune(10_000, 6_000)).toBe(1);
      expect(await s.find(old.hash)).toBeUndefined();
      expect(await s.find(recent.hash)).toMatchObject({ spiffeId: ID });
    }));
});
