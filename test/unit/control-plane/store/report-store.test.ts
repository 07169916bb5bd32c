// The proxies' reports at rest (SQLite): one row per SPIFFE ID and proxy instance, replaced by the next report of
// that instance, listed newest first from a point in time, bounded, and pruned once older than a cut-off; they
// survive a reopen.
import { describe, expect, test } from 'vitest';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ProxyReport } from '../../../../control-plane/src/store/store-contract.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';

const report = (spiffeId: string, instance: string, receivedAtMs: number, serial = 'aa'): ProxyReport => ({
  spiffeId,
  instance,
  served: [{ listener: 'inbound', serial, notAfterMs: receivedAtMs + 3_600_000 }],
  checkedAtMs: receivedAtMs - 5,
  receivedAtMs,
  replica: 'cp-1',
  denials: [{ policy: 'deny-all', outcome: 'deny', count: 3, lastAtMs: receivedAtMs - 10, lastCaller: API }],
});

describe('SqliteReportStore', () => {
  const tmp = tempDirPerTest();

  test('one row per proxy instance, replaced on each report, newest first, bounded', async () => {
    const s = await openSqliteStore(tmp.dir);
    await s.reports.put(report(WEB, 'host-a/1', 1_000));
    await s.reports.put(report(WEB, 'host-b/7', 2_000));
    await s.reports.put(report(API, 'host-a/2', 3_000));
    // The same instance again: its row is replaced, not added to.
    await s.reports.put(report(WEB, 'host-a/1', 4_000, 'bb'));
    const all = await s.reports.list(0);
    expect(all.map((r) => [r.spiffeId, r.instance, r.receivedAtMs])).toEqual([
      [WEB, 'host-a/1', 4_000],
      [API, 'host-a/2', 3_000],
      [WEB, 'host-b/7', 2_000],
    ]);
    expect(all[0]).toEqual(report(WEB, 'host-a/1', 4_000, 'bb'));
    expect((await s.reports.list(3_000)).map((r) => r.receivedAtMs)).toEqual([4_000, 3_000]);
    expect((await s.reports.list(0, 1)).map((r) => r.receivedAtMs)).toEqual([4_000]);
    await s.close();
  });

  test('prune forgets reports received before the cut-off; the rest survive a reopen', async () => {
    let s = await openSqliteStore(tmp.dir);
    await s.reports.put(report(WEB, 'a', 1_000));
    await s.reports.put(report(WEB, 'b', 2_000));
    await s.reports.put(report(API, 'c', 3_000));
    expect(await s.reports.prune(2_000)).toBe(1);
    expect(await s.reports.prune(2_000)).toBe(0);
    await s.close();
    s = await openSqliteStore(tmp.dir);
    expect((await s.reports.list(0)).map((r) => r.instance)).toEqual(['c', 'b']);
    await s.close();
  });
});
