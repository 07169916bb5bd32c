// Join tokens: only the hash is stored; a token is spent once, only together with the SVID it pays for (a second
// use, a use after expiry or after a revoke fails and records nothing; a record that fails leaves the token unspent),
// revoked only while unused, found by a hash prefix, and forgotten after the keep period.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, test } from 'vitest';
import { hashToken, newJoinToken, tokenIdOf } from '../../../../control-plane/src/store/join-token.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteInventoryStore } from '../../../../control-plane/src/store/sqlite/sqlite-inventory-store.js';
import { SqliteTokenStore } from '../../../../control-plane/src/store/sqlite/sqlite-token-store.js';
import type { IssuedSvidRow } from '../../../../control-plane/src/store/store-contract.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

const svid = (serial: string): IssuedSvidRow => ({ serial, spiffeId: ID, authorityId: 'A', intermediateSerial: 'i1', notBeforeMs: 0, notAfterMs: 9_000, issuedAtMs: 0, attestedAs: 'join_token:abc', kind: 'attest', caller: '127.0.0.1:1' });

describe('SqliteTokenStore', () => {
  const tmp = tempDirPerTest();
  /** `spend(hash, nowMs, serial)`: the token redeemed for an SVID of that serial (SqliteInventoryStore.recordWithToken). */
  type Spend = (hash: string, nowMs: number, serial: string) => Promise<boolean>;
  const withStore = async (fn: (s: SqliteTokenStore, db: DatabaseSync, spend: Spend, inv: SqliteInventoryStore) => Promise<void>) => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const inv = new SqliteInventoryStore(db);
    try {
      await fn(new SqliteTokenStore(db), db, (hash, nowMs, serial) => inv.recordWithToken(svid(serial), hash, nowMs), inv);
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

  test('a token is spent exactly once, with the SVID it pays for, and never after it expired', () =>
    withStore(async (s, _db, spend, inv) => {
      const a = await s.create('a', ID, 0, 1_000);
      expect(await spend(a.hash, 500, 'a1')).toBe(true);
      expect(await inv.find('a1')).toEqual(svid('a1'));
      expect(await spend(a.hash, 600, 'a2')).toBe(false);
      expect(await inv.find('a2')).toBeUndefined();
      expect((await s.find(a.hash))?.usedAtMs).toBe(500);
      const b = await s.create('b', ID, 0, 1_000);
      expect(await spend(b.hash, 1_000, 'b1')).toBe(false); // expiresAt is exclusive
      expect(await spend(hashToken('never created'), 0, 'c1')).toBe(false);
      expect((await inv.all()).map((r) => r.serial)).toEqual(['a1']);
    }));

  test('a record that fails (its serial taken) leaves the token unspent: spend and record are one transaction', () =>
    withStore(async (s, db, spend, inv) => {
      await inv.record(svid('taken'));
      const a = await s.create('a', ID, 0, 1_000);
      await expect(spend(a.hash, 10, 'taken')).rejects.toThrow(/UNIQUE/);
      expect(db.isTransaction).toBe(false);
      expect((await s.find(a.hash))?.usedAtMs).toBeNull();
      expect(await spend(a.hash, 11, 'a1')).toBe(true);
      expect((await s.find(a.hash))?.usedAtMs).toBe(11);
    }));

  test('two spends of one token racing: exactly one wins, and only its SVID is recorded', () =>
    withStore(async (s, _db, spend, inv) => {
      const a = await s.create('race', ID, 0, 1_000);
      const results = await Promise.all([spend(a.hash, 10, 'r1'), spend(a.hash, 10, 'r2'), spend(a.hash, 11, 'r3')]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await inv.all()).toHaveLength(1);
    }));

  test('revoke wins only over an unused token; a revoked token cannot be spent', () =>
    withStore(async (s, _db, spend, inv) => {
      const a = await s.create('a', ID, 0, 1_000);
      expect(await s.revoke(a.hash, 10)).toBe(true);
      expect(await s.revoke(a.hash, 11)).toBe(false);
      expect(await spend(a.hash, 12, 'a1')).toBe(false);
      expect(await inv.find('a1')).toBeUndefined();
      expect((await s.find(a.hash))?.revokedAtMs).toBe(10);
      const b = await s.create('b', ID, 0, 1_000);
      expect(await spend(b.hash, 5, 'b1')).toBe(true);
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
