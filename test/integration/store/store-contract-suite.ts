// One behavioural suite for the store contract (control-plane/src/store/store-contract.ts), run against every
// implementation (store-contract-sqlite.test.ts, store-contract-postgres.test.ts) so the embedded SQLite file and
// PostgreSQL answer alike: every method, the local audit file, the change feed, and hostile strings read back verbatim.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { ControlPlaneStore, IssuedSvidRow, LiveCursor, ProxyReport } from '../../../control-plane/src/store/store-contract.js';
import { PROBE_ROW } from '../../../control-plane/src/store/store-rows.js';
import { until } from '../../helpers/until.js';

export interface OpenedStore {
  readonly store: ControlPlaneStore;
  /** Where the store writes its local audit.log. */
  readonly dataDir: string;
  /** Closes the store and removes what it made. */
  dispose(): Promise<void>;
}

export const HOSTILE_STRINGS = [
  "spiffe://example.org/ns/o'brien/sa/x",
  "spiffe://example.org/'; DROP TABLE join_tokens; --",
  'spiffe://example.org/"quoted"\\back\\slash',
  "x'); DELETE FROM issuances; SELECT ('",
  'spiffe://example.org/100%_match',
  'spiffe://example.org/ünïcödé/😀',
  '$1 $2 $$ dollar $$ ?',
];

const svid = (serial: string, over: Partial<IssuedSvidRow> = {}): IssuedSvidRow => ({
  serial,
  spiffeId: 'spiffe://example.org/ns/default/sa/web',
  authorityId: 'auth-1',
  intermediateSerial: 'i-1',
  notBeforeMs: 1_000,
  notAfterMs: 10_000,
  issuedAtMs: 1_000,
  attestedAs: 'join_token:abc',
  kind: 'attest',
  caller: '127.0.0.1:5000',
  ...over,
});

/** Defines the suite for one implementation; `open` gives a store on an empty database. */
export function storeContractSuite(kind: 'sqlite' | 'postgres', open: () => Promise<OpenedStore>): void {
  let s: OpenedStore;
  const store = () => s.store;
  beforeAll(async () => {
    s = await open();
  }, 90_000);
  afterAll(async () => {
    await s?.dispose();
  });

  describe(`store contract (${kind})`, () => {
    test('kind', () => {
      expect(store().kind).toBe(kind);
    });

    test('inventory: record, find, live (window, order, limit), all, liveByAuthority', async () => {
      const inv = store().inventory;
      await inv.record(svid('aa01', { notAfterMs: 5_000, issuedAtMs: 1 }));
      await inv.record(svid('aa02', { notAfterMs: 3_000, issuedAtMs: 2, authorityId: 'auth-2' }));
      await inv.record(svid('aa03', { notAfterMs: 9_000_000_000_000, issuedAtMs: 3 }));
      await inv.record(svid('aa04', { notAfterMs: 500, issuedAtMs: 4 }));
      expect(await inv.find('aa01')).toEqual(svid('aa01', { notAfterMs: 5_000, issuedAtMs: 1 }));
      expect(await inv.find('nope')).toBeUndefined();
      await expect(inv.record(svid('aa01'))).rejects.toThrow();
      expect((await inv.live(1_000)).map((r) => r.serial)).toEqual(['aa02', 'aa01', 'aa03']);
      expect((await inv.live(1_000, 3_000)).map((r) => r.serial)).toEqual(['aa02']);
      expect((await inv.live(1_000, undefined, 2)).map((r) => r.serial)).toEqual(['aa02', 'aa01']);
      expect((await inv.all()).map((r) => r.serial)).toEqual(['aa04', 'aa03', 'aa02', 'aa01']);
      expect((await inv.all(1)).map((r) => r.serial)).toEqual(['aa04']);
      expect(await inv.liveByAuthority('auth-1', 1_000)).toEqual({ count: 2, latestNotAfterMs: 9_000_000_000_000 });
      expect(await inv.liveByAuthority('auth-2', 4_000)).toEqual({ count: 0, latestNotAfterMs: null });
    });

    test('inventory: livePage reads the live SVIDs a page at a time, in (notAfterMs, serial) order, ties across pages', async () => {
      const inv = store().inventory;
      // Rows of the first test are still there (aa01..aa04); these expire at 7_000 (five ties) and 8_000.
      for (const serial of ['pp05', 'pp01', 'pp04', 'pp02', 'pp03']) await inv.record(svid(serial, { notAfterMs: 7_000 }));
      await inv.record(svid('pp06', { notAfterMs: 8_000 }));
      const pages: string[][] = [];
      let after: LiveCursor | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await inv.livePage(4_000, after, 2);
        pages.push(page.map((r) => r.serial));
        const last = page.at(-1);
        if (!last || page.length < 2) break;
        after = { notAfterMs: last.notAfterMs, serial: last.serial };
      }
      expect(pages).toEqual([['aa01', 'pp01'], ['pp02', 'pp03'], ['pp04', 'pp05'], ['pp06', 'aa03'], []]);
      // Expired rows never show, a cursor from before now included; the first page is live() without a window.
      expect((await inv.livePage(7_000, { notAfterMs: 10, serial: 'zz' }, 10)).map((r) => r.serial)).toEqual(['pp06', 'aa03']);
      expect((await inv.livePage(1_000, undefined, 3)).map((r) => r.serial)).toEqual((await inv.live(1_000, undefined, 3)).map((r) => r.serial));
    });

    // After the inventory's first test, which reads every row: these add SVIDs of their own.
    test('tokens: create, find, findByPrefix, spend once (with the SVID it pays for), revoke, prune', async () => {
      const t = store().tokens;
      const inv = store().inventory;
      const spend = (hash: string, nowMs: number, serial: string) => inv.recordWithToken(svid(serial), hash, nowMs);
      const rec = await t.create('token-one', 'spiffe://example.org/a', 1_000, 60_000);
      expect(rec).toMatchObject({ spiffeId: 'spiffe://example.org/a', createdAtMs: 1_000, expiresAtMs: 61_000, usedAtMs: null, revokedAtMs: null });
      expect(rec.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(await t.find(rec.hash)).toEqual(rec);
      expect(await t.find('0'.repeat(64))).toBeUndefined();
      expect((await t.findByPrefix(rec.hash.slice(0, 8))).map((r) => r.hash)).toEqual([rec.hash]);
      expect(await t.findByPrefix('zz')).toEqual([]);
      expect(await spend(rec.hash, 2_000, 'tk01')).toBe(true);
      expect(await inv.find('tk01')).toEqual(svid('tk01'));
      expect(await spend(rec.hash, 2_001, 'tk02')).toBe(false);
      expect(await inv.find('tk02')).toBeUndefined();
      expect((await t.find(rec.hash))?.usedAtMs).toBe(2_000);
      expect(await t.revoke(rec.hash, 3_000)).toBe(false);

      const two = await t.create('token-two', 'spiffe://example.org/b', 1_000, 60_000);
      expect(await t.revoke(two.hash, 3_000)).toBe(true);
      expect(await t.revoke(two.hash, 3_001)).toBe(false);
      expect(await spend(two.hash, 3_002, 'tk03')).toBe(false);
      expect(await inv.find('tk03')).toBeUndefined();
      expect((await t.find(two.hash))?.revokedAtMs).toBe(3_000);

      const old = await t.create('token-expired', 'spiffe://example.org/c', 1_000, 1_000);
      expect(await spend(old.hash, 2_000, 'tk04')).toBe(false);
      // A record that fails (its serial taken) spends nothing: spend and record are one commit.
      await expect(spend(old.hash, 1_999, 'tk01')).rejects.toThrow();
      expect((await t.find(old.hash))?.usedAtMs).toBeNull();
      expect(await spend(old.hash, 1_999, 'tk05')).toBe(true);
      // token-expired ran out at 2 000, the others at 61 000: kept 10 s past expiry.
      expect(await t.prune(11_999, 10_000)).toBe(0);
      expect(await t.prune(12_001, 10_000)).toBe(1);
      expect(await t.find(old.hash)).toBeUndefined();
      expect(await t.find(two.hash)).toBeDefined();
      expect((await inv.all()).filter((r) => r.serial.startsWith('tk')).map((r) => r.serial).sort()).toEqual(['tk01', 'tk05']);
    });

    test('tokens: 40 concurrent spends of one token, exactly one wins and only its SVID is recorded', async () => {
      const rec = await store().tokens.create('token-race', 'spiffe://example.org/race', 1_000, 60_000);
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => store().inventory.recordWithToken(svid(`race${i}`), rec.hash, 2_000)));
      expect(results.filter(Boolean).length).toBe(1);
      expect((await store().inventory.all()).filter((r) => r.serial.startsWith('race')).map((r) => r.serial)).toEqual([`race${results.indexOf(true)}`]);
    });

    test('inventory: the lineage a row was recorded with is read back; a row without one has none', async () => {
      const inv = store().inventory;
      await inv.record(svid('cc01', { lineage: 'cc01' }));
      await inv.record(svid('cc02', { attestedAs: 'x509svid:cc01', kind: 'renew', lineage: 'cc01' }));
      await inv.record(svid('cc03'));
      expect((await inv.find('cc02'))?.lineage).toBe('cc01');
      expect(await inv.find('cc03')).toEqual(svid('cc03'));
    });

    test('inventory: renewalsOf finds the SVIDs renewed from a serial, oldest first, and nothing else', async () => {
      const inv = store().inventory;
      await inv.record(svid('bb01'));
      await inv.record(svid('bb03', { attestedAs: 'x509svid:bb01', kind: 'renew', issuedAtMs: 3 }));
      await inv.record(svid('bb02', { attestedAs: 'x509svid:bb01', kind: 'renew', issuedAtMs: 2 }));
      await inv.record(svid('bb04', { attestedAs: 'x509svid:bb02', kind: 'renew', issuedAtMs: 4 }));
      await inv.record(svid('bb05', { attestedAs: 'x509svid:bb01x', kind: 'renew', issuedAtMs: 5 }));
      expect((await inv.renewalsOf('bb01')).map((r) => r.serial)).toEqual(['bb02', 'bb03']);
      expect((await inv.renewalsOf('bb02')).map((r) => r.serial)).toEqual(['bb04']);
      expect(await inv.renewalsOf('bb04')).toEqual([]);
    });

    test('inventory: probeWrite (the store health probe) writes an issuance-sized row and leaves nothing behind', async () => {
      const inv = store().inventory;
      await inv.record(svid('dd01'));
      const before = await inv.all();
      await inv.probeWrite();
      await inv.probeWrite();
      expect(await inv.all()).toEqual(before);
      // One a failed DELETE left (PostgreSQL runs two statements) is taken by the next probe, not a conflict.
      await inv.record(PROBE_ROW);
      await inv.probeWrite();
      expect(await inv.find(PROBE_ROW.serial)).toBeUndefined();
    });

    test('grants: add, active, expiredUnaudited, markExpiryAudited once', async () => {
      const g = store().grants;
      const one = { id: 'bg-1', to: 'spiffe://example.org/ns/*/sa/db', from: ['spiffe://example.org/ns/ops/sa/*'], reason: 'incident 42', createdBy: 'admin.sock', createdAtMs: 1_000, expiresAtMs: 5_000 };
      await g.add(one);
      await g.add({ id: 'bg-2', to: 'spiffe://example.org/x', from: [], reason: 'r', expiresAtMs: 9_000 });
      expect((await g.active(4_000)).map((x) => x.id)).toEqual(['bg-1', 'bg-2']);
      expect((await g.active(6_000)).map((x) => x.id)).toEqual(['bg-2']);
      expect((await g.active(4_000))[0]).toEqual(one);
      expect((await g.expiredUnaudited(6_000)).map((x) => x.id)).toEqual(['bg-1']);
      expect(await g.markExpiryAudited('bg-1')).toBe(true);
      expect(await g.markExpiryAudited('bg-1')).toBe(false);
      expect(await g.markExpiryAudited('no-such-grant')).toBe(false);
      expect(await g.expiredUnaudited(10_000)).toMatchObject([{ id: 'bg-2', createdBy: '', createdAtMs: 0 }]);
    });

    test('meta: get and increment (concurrent increments each get their own value)', async () => {
      expect(await store().meta.get('config.version')).toBeUndefined();
      expect(await store().meta.increment('config.version')).toBe(1);
      expect(await store().meta.increment('config.version')).toBe(2);
      expect(await store().meta.get('config.version')).toBe('2');
      const many = await Promise.all(Array.from({ length: 30 }, () => store().meta.increment('config.many')));
      expect([...many].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    });

    test('revocations: add (once), find, all, live, remove', async () => {
      const r = store().revocations;
      const ban = { kind: 'spiffe_id' as const, value: 'spiffe://example.org/bad', reason: 'stolen', createdBy: 'admin.sock', createdAtMs: 1_000, notAfterMs: null };
      expect(await r.add(ban)).toBe(true);
      expect(await r.add({ ...ban, reason: 'again' })).toBe(false);
      expect(await r.find('spiffe_id', ban.value)).toEqual(ban);
      expect(await r.find('serial', ban.value)).toBeUndefined();
      await r.add({ kind: 'serial', value: 'ab12', reason: 'leaked', createdBy: 'x', createdAtMs: 2_000, notAfterMs: 5_000 });
      expect((await r.all()).map((b) => `${b.kind}:${b.value}`)).toEqual(['serial:ab12', 'spiffe_id:spiffe://example.org/bad']);
      expect((await r.live(6_000)).map((b) => b.kind)).toEqual(['spiffe_id']);
      expect(await r.remove('serial', 'ab12')).toBe(true);
      expect(await r.remove('serial', 'ab12')).toBe(false);
      expect(await r.remove('spiffe_id', ban.value)).toBe(true);
    });

    test('revocations: matching reads the bans on one ID or one serial, expired serial bans included, nothing else', async () => {
      const r = store().revocations;
      const id = 'spiffe://example.org/ns/m/sa/one';
      const at = { reason: 'r', createdBy: 'x', createdAtMs: 1 };
      await r.add({ kind: 'spiffe_id', value: id, ...at, notAfterMs: null });
      await r.add({ kind: 'serial', value: 'cd34', ...at, notAfterMs: 5 });
      await r.add({ kind: 'spiffe_id', value: 'spiffe://example.org/ns/m/sa/other', ...at, notAfterMs: null });
      // A serial that equals an ID's text, or an ID that equals a serial's, is not mixed up across kinds.
      await r.add({ kind: 'serial', value: id, ...at, notAfterMs: null });
      const seen = async (i: string, s: string | undefined) => (await r.matching(i, s)).map((b) => `${b.kind}:${b.value}`);
      expect(await seen(id, 'cd34')).toEqual(['serial:cd34', `spiffe_id:${id}`]);
      expect(await seen(id, undefined)).toEqual([`spiffe_id:${id}`]);
      expect(await seen('spiffe://example.org/ns/m/sa/clean', 'cd34')).toEqual(['serial:cd34']);
      expect(await seen('cd34', 'ffff')).toEqual([]);
      for (const [kind, value] of [['spiffe_id', id], ['serial', 'cd34'], ['spiffe_id', 'spiffe://example.org/ns/m/sa/other'], ['serial', id]] as const) await r.remove(kind, value);
    });

    test('registrations: save replaces a session, remove, loadAll', async () => {
      const ep = (host: string, port: number): ServiceEndpoint => ({ host, port, spiffeId: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
      const reg = store().registrations;
      const id = 'spiffe://example.org/ns/default/sa/api';
      await reg.save({ id: 's1', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.1', 8001) }, { service: 'api', endpoint: ep('::1', 8002) }] }, 1_000, 'cp-a');
      await reg.save({ id: 's2', spiffeId: id, registrations: [{ service: 'web', endpoint: ep('127.0.0.2', 9000) }] }, 1_000, 'cp-a');
      expect((await reg.loadAll()).find((x) => x.id === 's1')?.registrations.length).toBe(2);
      await reg.save({ id: 's1', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.1', 8003) }] }, 2_000, 'cp-a');
      const all = await reg.loadAll();
      expect(all.map((x) => [x.id, x.spiffeId, x.registrations.map((r) => `${r.service}@${r.endpoint.host}:${r.endpoint.port}`)])).toEqual([
        ['s1', id, ['api@127.0.0.1:8003']],
        ['s2', id, ['web@127.0.0.2:9000']],
      ]);
      expect(all[0]!.registrations[0]!.endpoint).toEqual(ep('127.0.0.1', 8003));
      await reg.remove('s1');
      await reg.remove('no-such-session');
      expect((await reg.loadAll()).map((x) => x.id)).toEqual(['s2']);
      await reg.remove('s2');
    });

    test('registrations: owner and heartbeat read back, heartbeat touches only the owner\'s listed sessions, removeStale sweeps once', async () => {
      const id = 'spiffe://example.org/ns/default/sa/api';
      const ep = (host: string, port: number): ServiceEndpoint => ({ host, port, spiffeId: id, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
      const reg = store().registrations;
      const hostile = HOSTILE_STRINGS[1]!;
      await reg.save({ id: 'h1', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.1', 1) }, { service: 'web', endpoint: ep('127.0.0.1', 2) }] }, 1_000, 'cp-a');
      await reg.save({ id: 'h2', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.2', 1) }] }, 1_000, hostile);
      await reg.save({ id: 'h3', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.3', 1) }] }, 1_500, 'cp-a');
      const owners = async () => (await reg.loadAll()).map((x) => [x.id, x.owner, x.heartbeatAtMs]);
      expect(await owners()).toEqual([
        ['h1', 'cp-a', 1_000],
        ['h2', hostile, 1_000],
        ['h3', 'cp-a', 1_500],
      ]);
      // Another owner's session and an unknown id are not touched, and not reported as found.
      expect((await reg.heartbeat('cp-a', ['h1', 'h2', 'no-such-session'], 5_000)).sort()).toEqual(['h1']);
      expect(await reg.heartbeat('cp-a', [], 6_000)).toEqual([]);
      expect(await reg.heartbeat(hostile, ['h2'], 4_000)).toEqual(['h2']);
      expect(await owners()).toEqual([
        ['h1', 'cp-a', 5_000],
        ['h2', hostile, 4_000],
        ['h3', 'cp-a', 1_500],
      ]);
      // Strictly older than the cut: h3 (1,500) goes, h2 (4,000) stays at a cut of 4,000; counted per session.
      expect(await reg.removeStale(4_000)).toBe(1);
      expect(await reg.removeStale(4_000)).toBe(0);
      expect(await reg.removeStale(5_000)).toBe(1);
      const left = await reg.loadAll();
      expect(left.map((x) => [x.id, x.registrations.length])).toEqual([['h1', 2]]);
      // A save takes the session over with its new owner and time, on every row.
      await reg.save({ id: 'h1', spiffeId: id, registrations: [{ service: 'api', endpoint: ep('127.0.0.1', 1) }] }, 7_000, 'cp-b');
      expect(await owners()).toEqual([['h1', 'cp-b', 7_000]]);
      expect(await reg.heartbeat('cp-a', ['h1'], 8_000)).toEqual([]);
      expect(await reg.removeStale(7_001)).toBe(1);
      expect(await reg.loadAll()).toEqual([]);
    });

    test('reports: put replaces per (spiffeId, instance), list since / newest first / limit, prune', async () => {
      const rep = (instance: string, receivedAtMs: number): ProxyReport => ({
        spiffeId: 'spiffe://example.org/ns/default/sa/web',
        instance,
        served: [{ listener: 'in', serial: 'ab', notAfterMs: 9_000 }],
        checkedAtMs: receivedAtMs - 5,
        receivedAtMs,
        replica: 'cp-1',
        denials: [{ policy: 'p', outcome: 'audit', count: 3, lastAtMs: 10, lastCaller: 'spiffe://example.org/x' }],
      });
      const r = store().reports;
      await r.put(rep('web-1', 1_000));
      await r.put(rep('web-2', 2_000));
      await r.put(rep('web-1', 3_000));
      expect((await r.list(0)).map((x) => [x.instance, x.receivedAtMs])).toEqual([
        ['web-1', 3_000],
        ['web-2', 2_000],
      ]);
      expect(await r.list(2_500)).toEqual([rep('web-1', 3_000)]);
      expect((await r.list(0, 1)).length).toBe(1);
      expect(await r.prune(2_500)).toBe(1);
      expect((await r.list(0)).map((x) => x.instance)).toEqual(['web-1']);
    });

    test('reports: put with keepPerId keeps that many instances of the ID, the new one and the newest others; other IDs untouched', async () => {
      const rep = (spiffeId: string, instance: string, receivedAtMs: number): ProxyReport => ({ spiffeId, instance, served: [], checkedAtMs: receivedAtMs, receivedAtMs, replica: 'cp-1', denials: [] });
      const r = store().reports;
      const web = 'spiffe://example.org/ns/default/sa/kept';
      const api = 'spiffe://example.org/ns/default/sa/other';
      await r.put(rep(api, 'api-1', 500), 3);
      for (let i = 1; i <= 5; i++) await r.put(rep(web, `w-${i}`, 1_000 * i), 3);
      expect((await r.list(0)).filter((x) => x.spiffeId === web).map((x) => x.instance)).toEqual(['w-5', 'w-4', 'w-3']);
      // The new instance stays even when older rows share its time; a known instance replaces its own row.
      await r.put(rep(web, 'a-new', 5_000), 3);
      expect((await r.list(0)).filter((x) => x.spiffeId === web).map((x) => x.instance)).toEqual(['a-new', 'w-5', 'w-4']);
      await r.put(rep(web, 'w-4', 6_000), 3);
      expect((await r.list(0)).filter((x) => x.spiffeId === web).map((x) => x.instance)).toEqual(['w-4', 'a-new', 'w-5']);
      expect((await r.list(0)).filter((x) => x.spiffeId === api).map((x) => x.instance)).toEqual(['api-1']);
    });

    test('reports: list is fair per SPIFFE ID (rank by rank) and stops at its byte budget', async () => {
      const rep = (spiffeId: string, instance: string, receivedAtMs: number, pad = 0): ProxyReport => ({
        spiffeId,
        instance,
        served: [],
        checkedAtMs: receivedAtMs,
        receivedAtMs,
        replica: 'cp-1',
        denials: pad ? [{ policy: 'p', outcome: 'deny', count: 1, lastAtMs: 1, lastCaller: 'x'.repeat(pad) }] : [],
      });
      const r = store().reports;
      await r.prune(Number.MAX_SAFE_INTEGER);
      const legit = 'spiffe://example.org/ns/default/sa/legit';
      await r.put(rep(legit, 'legit-1', 1_000));
      // 4 IDs x 8 instances, all newer than the real proxy's report (audit 16b F2: 16 IDs x 64 against LIMIT 1,000).
      for (let id = 0; id < 4; id++) for (let i = 0; i < 8; i++) await r.put(rep(`spiffe://example.org/ns/t/sa/a${id}`, `i${i}`, 2_000 + id * 10 + i));
      const cut = await r.list(0, 5);
      expect(cut.map((x) => x.spiffeId).sort()).toEqual([legit, ...[0, 1, 2, 3].map((id) => `spiffe://example.org/ns/t/sa/a${id}`)].sort());
      // Each ID's newest first: rank 1 is the newest instance of each attacker ID.
      expect(cut.filter((x) => x.spiffeId !== legit).every((x) => x.instance === 'i7')).toBe(true);
      expect((await r.list(0, 10)).filter((x) => x.spiffeId.endsWith('/a0')).map((x) => x.instance)).toEqual(['i7', 'i6']);
      // A character budget: large reports cost their size; the first row is always read, none once it is spent.
      await r.prune(Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < 6; i++) await r.put(rep('spiffe://example.org/ns/t/sa/big', `b${i}`, 3_000 + i, 10_000));
      await r.put(rep(legit, 'legit-1', 1_000));
      const budgeted = await r.list(0, 100, 15_000);
      // The legitimate small report comes first at its rank, then big reports until 15,000 bytes are read.
      expect(budgeted.map((x) => x.instance)).toEqual(['legit-1', 'b5', 'b4']);
      expect((await r.list(0, 100, 1)).map((x) => x.instance)).toEqual(['legit-1']);
    });

    test('audit: the local line at once (0600), the row after flush, recent by prefix newest first', async () => {
      const audit = store().audit;
      audit.record(1_000, { event: 'token.created', result: 'ok', spiffeId: 'spiffe://example.org/a', caller: 'admin.sock' });
      audit.record(2_000, { event: 'svid.issued', result: 'issued', serial: 'ab', notAfterMs: 3_000 });
      audit.record(3_000, { event: 'svid.refused', result: 'refused', code: 'TESSERA_ERR_X' });
      const file = join(s.dataDir, 'audit.log');
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.slice(-2)).toEqual([
        { ts: new Date(2_000).toISOString(), event: 'svid.issued', result: 'issued', serial: 'ab', notAfterMs: 3_000, notAfter: new Date(3_000).toISOString() },
        { ts: new Date(3_000).toISOString(), event: 'svid.refused', result: 'refused', code: 'TESSERA_ERR_X' },
      ]);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      await audit.flush();
      expect((await audit.recent('svid.')).map((e) => e.event)).toEqual(['svid.refused', 'svid.issued']);
      expect((await audit.recent('svid.', 1)).map((e) => e.event)).toEqual(['svid.refused']);
      expect((await audit.recent('token.'))[0]).toEqual({ ts: new Date(1_000).toISOString(), event: 'token.created', result: 'ok', spiffeId: 'spiffe://example.org/a', caller: 'admin.sock' });
      expect(await audit.recent('nothing.')).toEqual([]);
    });

    test('audit: 350 records keep their order', async () => {
      for (let i = 0; i < 350; i++) store().audit.record(10_000 + i, { event: 'order.check', n: i });
      await store().audit.flush();
      const got = await store().audit.recent('order.check', 1_000);
      expect(got.map((e) => e.n)).toEqual(Array.from({ length: 350 }, (_, i) => 349 - i));
    });

    test('audit: prune deletes the oldest rows recorded before a time, at most maxRows per call', async () => {
      const audit = store().audit;
      for (let i = 0; i < 8; i++) audit.record(100 + i, { event: 'prune.check', n: i });
      await audit.flush();
      expect(await audit.prune(105, 2)).toBe(2);
      expect((await audit.recent('prune.check')).map((e) => e.n)).toEqual([7, 6, 5, 4, 3, 2]);
      expect(await audit.prune(105, 100)).toBe(3);
      expect(await audit.prune(105, 100)).toBe(0);
      expect((await audit.recent('prune.check')).map((e) => e.n)).toEqual([7, 6, 5]);
    });

    test('changes: a subscriber fires on an announcement of its topic only; unsubscribe stops it', async () => {
      const seen: string[] = [];
      const off = [store().changes.subscribe('grants', () => seen.push('grants')), store().changes.subscribe('ca', () => seen.push('ca'))];
      await store().changes.announce('grants');
      await until('grants fired', () => seen.includes('grants'), 5_000, 10);
      expect(seen.filter((t) => t === 'grants').length).toBeGreaterThanOrEqual(1);
      for (const f of off) f();
      const count = seen.length;
      await store().changes.announce('grants');
      await new Promise((r) => setTimeout(r, 200));
      expect(seen.length).toBe(count);
    });

    test('hostile strings (quotes, statement breaks, backslashes, wildcards) are data, read back verbatim', async () => {
      const st = store();
      for (const [i, h] of HOSTILE_STRINGS.entries()) {
        const tok = await st.tokens.create(`hostile-${i}`, h, 1_000, 60_000);
        expect((await st.tokens.find(tok.hash))?.spiffeId).toBe(h);
        await st.inventory.record(svid(`h-${i}`, { spiffeId: h, caller: h, attestedAs: h, issuedAtMs: 0 }));
        expect(await st.inventory.find(`h-${i}`)).toMatchObject({ spiffeId: h, caller: h, attestedAs: h });
        expect(await st.inventory.find(h)).toBeUndefined();
        expect(await st.revocations.add({ kind: 'spiffe_id', value: h, reason: h, createdBy: h, createdAtMs: 1, notAfterMs: null })).toBe(true);
        expect(await st.revocations.find('spiffe_id', h)).toMatchObject({ value: h, reason: h, createdBy: h });
        await st.grants.add({ id: `hostile-${i}`, to: h, from: [h], reason: h, expiresAtMs: 1 });
        expect(await st.meta.increment(h)).toBe(1);
        expect(await st.meta.get(h)).toBe('1');
        await st.reports.put({ spiffeId: h, instance: h, served: [], checkedAtMs: 1, receivedAtMs: 999_999_000 + i, replica: h, denials: [] });
        st.audit.record(1, { event: `hostile.${i}`, spiffeId: h, caller: h });
      }
      const grants = (await st.grants.expiredUnaudited(2)).filter((g) => g.id.startsWith('hostile-'));
      expect(grants.map((g) => [g.to, g.from[0], g.reason])).toEqual(HOSTILE_STRINGS.map((h) => [h, h, h]));
      // Listed fair per ID, smaller first (fair-report-list.ts): the order is not what is checked here.
      expect((await st.reports.list(999_999_000)).map((r) => r.spiffeId).sort()).toEqual([...HOSTILE_STRINGS].sort());
      await st.audit.flush();
      expect((await st.audit.recent('hostile.', 100)).map((e) => e.spiffeId).reverse()).toEqual(HOSTILE_STRINGS);
      // The tables are all still there, and what was stored before is untouched.
      expect(await st.inventory.find('aa01')).toBeDefined();
      expect((await st.tokens.findByPrefix((await st.tokens.create('after', 'spiffe://example.org/after', 1, 60_000)).hash)).length).toBe(1);
      expect((await st.revocations.all()).length).toBe(HOSTILE_STRINGS.length);
    });
  });
}
