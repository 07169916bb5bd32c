// The fleet view's sliced read of the live SVIDs (live-svid-scan.ts) on fixed rows: pages of at most sliceRows rows,
// one turn of the event loop given back between every two slices (read and fold), renewals linked to SVIDs read in
// another page, and the kept rows and counts exactly what sorting every row would give (audit 54b F5: the whole
// read and fold of up to 10,000 rows was one turn, every 2 s while a page watched).
import { describe, expect, test } from 'vitest';
import { canonicalSerial } from '../../../../common/pki/serial.js';
import { scanLiveSvids } from '../../../../control-plane/src/admin/dashboard/live-svid-scan.js';
import { SvidChains, type WorkloadRow, workloadOrder } from '../../../../control-plane/src/admin/dashboard/workload-panel.js';
import type { IssuedSvidRow } from '../../../../control-plane/src/store/store-contract.js';
import { livePages } from '../../../helpers/live-pages.js';

/** The reference: every chain head at once, sorted (the panel's rows before the scan read them in slices). */
function workloadRows(chains: SvidChains): WorkloadRow[] {
  const rows: WorkloadRow[] = [];
  for (const [serial, r] of chains.bySerial) {
    const head = chains.headRow(serial, r);
    if (head) rows.push(head);
  }
  return rows.sort(workloadOrder);
}

const TD = 'example.org';
const NOW = 1_000_000;

function svid(i: number, over: Partial<IssuedSvidRow> = {}): IssuedSvidRow {
  // Expiries repeat every 7 rows, so pages end inside runs of equal expiry; SPIFFE IDs repeat every 50 (replicas).
  return { serial: i.toString(16).padStart(6, '0'), spiffeId: `spiffe://${TD}/ns/load/sa/w${i % 50}`, authorityId: i % 3 === 0 ? 'b' : 'a', intermediateSerial: '0a', notBeforeMs: NOW - 10, notAfterMs: NOW + 1_000 + (i % 7) * 100 + Math.floor(i / 700), issuedAtMs: NOW - (i % 13), attestedAs: `join_token:${i}`, kind: 'attest', caller: '127.0.0.1:1', ...over };
}

/** 2,500 rows: some expired, some renewed (the renewal expiring later, so read in a later page), the control plane's own. */
/** The store's pages over `rows`, each page's limit noted in `asked`. */
function counted(rows: readonly IssuedSvidRow[], asked: number[]): Parameters<typeof scanLiveSvids>[0] {
  const pages = livePages(() => rows);
  return {
    livePage: (now, after, limit) => {
      asked.push(limit);
      return pages(now, after, limit);
    },
  };
}

function fleet(): IssuedSvidRow[] {
  const rows = Array.from({ length: 2_500 }, (_, i) => svid(i));
  for (let i = 0; i < 300; i += 3) rows.push(svid(10_000 + i, { attestedAs: `x509svid:${svid(i).serial.toUpperCase()}`, kind: 'renew', notAfterMs: NOW + 5_000 + i, issuedAtMs: NOW }));
  for (let i = 0; i < 40; i++) rows.push(svid(20_000 + i, { notAfterMs: NOW - i }));
  for (let i = 0; i < 3; i++) rows.push(svid(30_000 + i, { spiffeId: `spiffe://${TD}/tessera/control-plane`, kind: 'self', attestedAs: 'self', issuedAtMs: NOW - 100 + i }));
  return rows;
}

const expiryThenPanel = (a: WorkloadRow, b: WorkloadRow) => a.notAfterMs - b.notAfterMs || (a.spiffeId < b.spiffeId ? -1 : a.spiffeId > b.spiffeId ? 1 : b.issuedAtMs - a.issuedAtMs) || (a.serial < b.serial ? -1 : 1);

describe('the live SVIDs, read and folded in slices', () => {
  test('pages of at most sliceRows rows, a turn given back between slices; rows and counts as from one sort of all', async () => {
    const rows = fleet();
    const limits = { maxSvids: 10_000, sliceRows: 1_000, maxWorkloadRows: 500, timelineSvids: 40 };
    const asked: number[] = [];
    let yields = 0;
    const scan = await scanLiveSvids(counted(rows, asked), NOW, limits, async () => {
      yields++;
    });

    const live = rows.filter((r) => r.notAfterMs > NOW);
    expect(scan.read).toBe(live.length);
    expect(asked.every((n) => n <= 1_000)).toBe(true);
    expect(asked.length).toBe(Math.ceil(live.length / 1_000));
    // Read pages, then the heads 1,000 SVIDs at a time: one yield between every two slices.
    expect(scan.slices).toBe(asked.length + Math.ceil(live.length / 1_000) - 1);
    expect(yields).toBe(scan.slices - 1);

    const all = workloadRows(new SvidChains(live));
    expect(scan.heads).toBe(all.length);
    expect(scan.workloads).toEqual(all.slice(0, 500));
    expect(scan.soonest).toEqual([...all].sort(expiryThenPanel).slice(0, 40));
    // A renewal read pages after the SVID it renewed still supersedes it; the control plane shows its newest, with two older.
    const key = (i: number) => canonicalSerial(svid(i).serial)!;
    expect(scan.chains.childOf(key(3))?.serial).toBe(svid(10_003).serial);
    expect(scan.chains.headRow(key(10_003), scan.chains.bySerial.get(key(10_003))!)?.superseded).toBe(1);
    expect(scan.chains.headRow(key(3), svid(3))).toBeUndefined();
    expect(all.filter((w) => w.kind === 'self')).toMatchObject([{ serial: key(30_002), superseded: 2 }]);
    // Counted as the store's liveByAuthority counts: the control plane's own SVIDs keep no authority in the bundle.
    const byAuth = (a: string) => live.filter((r) => r.authorityId === a && r.kind !== 'self');
    expect(Object.fromEntries(scan.byAuthority)).toEqual({ a: { count: byAuth('a').length, latestNotAfterMs: Math.max(...byAuth('a').map((r) => r.notAfterMs)) }, b: { count: byAuth('b').length, latestNotAfterMs: Math.max(...byAuth('b').map((r) => r.notAfterMs)) } });
  });

  test('at most maxSvids rows are read, the last page cut to fit; slices of one row still give every head', async () => {
    const rows = fleet();
    const asked: number[] = [];
    const cut = await scanLiveSvids(counted(rows, asked), NOW, { maxSvids: 1_500, sliceRows: 1_000, maxWorkloadRows: 500, timelineSvids: 40 }, async () => {});
    expect(cut.read).toBe(1_500);
    expect(asked).toEqual([1_000, 500]);

    const tiny = await scanLiveSvids({ livePage: livePages(() => rows) }, NOW, { maxSvids: 120, sliceRows: 1, maxWorkloadRows: 7, timelineSvids: 3 }, async () => {});
    const first = rows.filter((r) => r.notAfterMs > NOW).sort((a, b) => a.notAfterMs - b.notAfterMs || (a.serial < b.serial ? -1 : 1)).slice(0, 120);
    const all = workloadRows(new SvidChains(first));
    expect([tiny.read, tiny.heads, tiny.slices]).toEqual([120, all.length, 120 + 119]);
    expect(tiny.workloads).toEqual(all.slice(0, 7));
    expect(tiny.soonest).toEqual([...all].sort(expiryThenPanel).slice(0, 3));
  });
});
