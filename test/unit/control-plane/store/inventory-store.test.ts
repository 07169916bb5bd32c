// The inventory of issued SVIDs: a row reads back as recorded, "live" means unexpired at the given time (soonest
// expiry first, optionally only those expiring within a window), and the per-authority count drives retirement (the
// control plane's own SVIDs left out of it).
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteInventoryStore } from '../../../../control-plane/src/store/sqlite/sqlite-inventory-store.js';
import type { IssuedSvidRow } from '../../../../control-plane/src/store/store-contract.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const row = (serial: string, authorityId: string, notAfterMs: number, issuedAtMs = 0): IssuedSvidRow => ({
  serial,
  spiffeId: `spiffe://example.org/${serial}`,
  authorityId,
  intermediateSerial: 'i1',
  notBeforeMs: 0,
  notAfterMs,
  issuedAtMs,
  attestedAs: 'join_token:abc',
  kind: 'attest',
  caller: '127.0.0.1:1',
});

describe('SqliteInventoryStore', () => {
  const tmp = tempDirPerTest();

  test('rows read back as recorded; live, window and per-authority answers follow the clock given', async () => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const inv = new SqliteInventoryStore(db);
    await inv.record(row('03', 'A', 3_000, 3));
    await inv.record(row('01', 'A', 1_000, 1));
    await inv.record(row('02', 'B', 2_000, 2));
    const serials = (rows: IssuedSvidRow[]) => rows.map((r) => r.serial);
    expect(await inv.find('02')).toEqual(row('02', 'B', 2_000, 2));
    expect(await inv.find('ff')).toBeUndefined();
    expect(serials(await inv.live(0))).toEqual(['01', '02', '03']);
    expect(serials(await inv.live(1_000))).toEqual(['02', '03']); // notAfter is exclusive
    expect(serials(await inv.live(500, 1_600))).toEqual(['01', '02']);
    expect(serials(await inv.live(0, undefined, 1))).toEqual(['01']);
    expect(serials(await inv.all())).toEqual(['03', '02', '01']);
    expect(await inv.liveByAuthority('A', 0)).toEqual({ count: 2, latestNotAfterMs: 3_000 });
    expect(await inv.liveByAuthority('A', 2_000)).toEqual({ count: 1, latestNotAfterMs: 3_000 });
    expect(await inv.liveByAuthority('A', 3_000)).toEqual({ count: 0, latestNotAfterMs: null });
    await expect(inv.record(row('01', 'B', 9_000))).rejects.toThrow(/UNIQUE/);
    db.close();
  });

  test("the control plane's own SVIDs (kind self) are not counted per authority: they keep no authority in the bundle", async () => {
    const db = openDatabase(join(tmp.dir, 'tessera.db'));
    const inv = new SqliteInventoryStore(db);
    await inv.record({ ...row('0c', 'A', 9_000), kind: 'self', attestedAs: 'self' });
    await inv.record(row('01', 'A', 2_000));
    expect(await inv.liveByAuthority('A', 0)).toEqual({ count: 1, latestNotAfterMs: 2_000 });
    expect(await inv.liveByAuthority('A', 2_000)).toEqual({ count: 0, latestNotAfterMs: null });
    expect((await inv.live(2_000)).map((r) => r.serial)).toEqual(['0c']);
    db.close();
  });
});
