// Break-glass grants at rest: active while unexpired, reported once as expired-and-not-audited until marked, and
// both survive a reopen of the database.
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { BreakGlassGrant } from '../../../../common/policy/policy-types.js';
import { openDatabase } from '../../../../control-plane/src/store/database.js';
import { GrantStore } from '../../../../control-plane/src/store/grant-store.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const grant = (id: string, expiresAtMs: number): BreakGlassGrant => ({ id, to: 'spiffe://example.org/api', from: ['spiffe://example.org/*'], reason: 'incident 7', createdBy: 'ops', createdAtMs: 1, expiresAtMs });

describe('GrantStore', () => {
  const tmp = tempDirPerTest();

  test('active until expiry; an expiry is due once, marked, and the mark survives a reopen', () => {
    const file = join(tmp.dir, 'tessera.db');
    let db = openDatabase(file);
    let s = new GrantStore(db);
    s.add(grant('bg-b', 2_000));
    s.add(grant('bg-a', 1_000));
    expect(s.active(0)).toEqual([grant('bg-a', 1_000), grant('bg-b', 2_000)]);
    expect(s.active(1_000).map((g) => g.id)).toEqual(['bg-b']);
    expect(s.expiredUnaudited(1_500).map((g) => g.id)).toEqual(['bg-a']);
    s.markExpiryAudited('bg-a');
    db.close();

    db = openDatabase(file);
    s = new GrantStore(db);
    expect(s.expiredUnaudited(1_500)).toEqual([]);
    expect(s.expiredUnaudited(5_000).map((g) => g.id)).toEqual(['bg-b']);
    expect(() => s.add(grant('bg-b', 9_000))).toThrow(/UNIQUE/);
    db.close();
  });
});
