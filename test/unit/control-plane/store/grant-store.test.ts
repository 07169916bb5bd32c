// Break-glass grants at rest: active while unexpired, reported once as expired-and-not-audited until marked (and
// marked by one caller only), and both survive a reopen of the database.
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteGrantStore } from '../../../../control-plane/src/store/sqlite/sqlite-grant-store.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const grant = (id: string, expiresAtMs: number): BreakGlassGrant => ({ id, to: 'spiffe://example.org/api', from: ['spiffe://example.org/*'], reason: 'incident 7', createdBy: 'ops', createdAtMs: 1, expiresAtMs });

describe('SqliteGrantStore', () => {
  const tmp = tempDirPerTest();

  test('active until expiry; an expiry is due once, marked by one caller, and the mark survives a reopen', async () => {
    const file = join(tmp.dir, 'tessera.db');
    let db = openDatabase(file);
    let s = new SqliteGrantStore(db);
    await s.add(grant('bg-b', 2_000));
    await s.add(grant('bg-a', 1_000));
    expect(await s.active(0)).toEqual([grant('bg-a', 1_000), grant('bg-b', 2_000)]);
    expect((await s.active(1_000)).map((g) => g.id)).toEqual(['bg-b']);
    expect((await s.expiredUnaudited(1_500)).map((g) => g.id)).toEqual(['bg-a']);
    expect(await s.markExpiryAudited('bg-a')).toBe(true);
    // A second marker (another replica's tick) learns that it is not the one to audit.
    expect(await s.markExpiryAudited('bg-a')).toBe(false);
    expect(await s.markExpiryAudited('bg-unknown')).toBe(false);
    db.close();

    db = openDatabase(file);
    s = new SqliteGrantStore(db);
    expect(await s.expiredUnaudited(1_500)).toEqual([]);
    expect((await s.expiredUnaudited(5_000)).map((g) => g.id)).toEqual(['bg-b']);
    await expect(s.add(grant('bg-b', 9_000))).rejects.toThrow(/UNIQUE/);
    db.close();
  });
});
