// The inventory's prune against both stores (a fresh SQLite file, a fresh PostgreSQL database, per test): expired
// rows no answer needs go, in bounded statements; what a renewal (find, lineage) or a serial ban's walk
// (renewalsOf, through expired rows, by the real Revocations) answers for every SVID that is still live does not
// change: a chain whose middle expired long ago and whose tip is live keeps its links, a long-lived chain keeps
// `reach` renewals above its kept rows, and rows recorded before chains (and before lineage) stay while a chain
// grown from them could lead a ban to a live SVID.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { Revocations } from '../../../control-plane/src/issuance/revocations.js';
import { openSqliteStore } from '../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore, InventoryPrune, IssuedSvidRow } from '../../../control-plane/src/store/store-contract.js';
import { PROBE_ROW } from '../../../control-plane/src/store/store-rows.js';
import { loud } from '../../helpers/control-plane-parts.js';
import { TD } from '../../helpers/control-plane.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore } from '../../helpers/postgres-store.js';
import { makeTempDir } from '../../helpers/run.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = 20_000 * DAY;
const KEEP = DAY;
/** Expired three days ago: past the keep. */
const LONG_AGO = NOW - 3 * DAY;
/** Expired an hour ago: within the keep. */
const RECENTLY = NOW - HOUR;
const LIVE = NOW + HOUR;
const prune = (over: Partial<InventoryPrune> = {}): InventoryPrune => ({ cutoffMs: NOW - KEEP, reach: 10_000, batch: 5_000, maxRows: 1_000_000, ...over });

/** An attested SVID: its own chain at depth 0 (legacy: recorded without chain and depth, and, old enough, lineage). */
const attested = (serial: string, notAfterMs: number, legacy: '' | 'no-chain' | 'no-lineage' = ''): IssuedSvidRow => ({
  serial,
  spiffeId: `spiffe://${TD}/ns/default/sa/web`,
  authorityId: 'auth-1',
  intermediateSerial: 'i-1',
  notBeforeMs: notAfterMs - HOUR,
  notAfterMs,
  issuedAtMs: notAfterMs - HOUR,
  attestedAs: 'join_token:abcd1234',
  kind: 'attest',
  caller: '127.0.0.1:5000',
  ...(legacy === 'no-lineage' ? {} : { lineage: serial }),
  ...(legacy === '' ? { chain: serial, depth: 0 } : {}),
});

/** A renewal of `parent`, as the issuer records it (for a legacy parent: a chain named by the parent, depth 1). */
const renewal = (serial: string, parent: IssuedSvidRow, notAfterMs: number, legacy: '' | 'no-chain' | 'no-lineage' = ''): IssuedSvidRow => ({
  ...attested(serial, notAfterMs, legacy),
  attestedAs: `x509svid:${parent.serial}`,
  kind: 'renew',
  ...(legacy === 'no-lineage' ? {} : { lineage: parent.lineage || parent.serial }),
  ...(legacy === '' ? (parent.chain !== undefined ? { chain: parent.chain, depth: parent.depth! + 1 } : { chain: parent.serial, depth: 1 }) : {}),
});

/** A chain of renewals from `first`, one row per NotAfter given. */
function chainFrom(first: IssuedSvidRow, prefix: string, notAfters: number[], legacy: '' | 'no-chain' | 'no-lineage' = ''): IssuedSvidRow[] {
  const rows = [first];
  for (const [i, t] of notAfters.entries()) rows.push(renewal(`${prefix}${(i + 1).toString(16).padStart(2, '0')}`, rows[i]!, t, legacy));
  return rows;
}

interface Opened {
  readonly store: ControlPlaneStore;
  dispose(): Promise<void>;
}

const STORES: Record<'sqlite' | 'postgres', () => Promise<Opened>> = {
  sqlite: async () => {
    const tmp = await makeTempDir();
    const store = await openSqliteStore(tmp.dir);
    return {
      store,
      async dispose() {
        await store.close();
        await tmp.cleanup();
      },
    };
  },
  postgres: async () => {
    const server: PostgresDatabase = await openPostgresDatabase();
    const s = await openTestPgStore(server.url);
    return {
      store: s.store,
      async dispose() {
        await s.dispose();
        await server.destroy();
      },
    };
  },
};

describe.each(['sqlite', 'postgres'] as const)('inventory prune (%s)', (kind) => {
  let opened: Opened;
  const inv = () => opened.store.inventory;
  beforeEach(async () => {
    opened = await STORES[kind]();
  }, 90_000);
  afterEach(async () => {
    await opened?.dispose();
  });

  const record = async (...rows: IssuedSvidRow[]) => {
    for (const r of rows) await inv().record(r);
  };
  const serials = async () => (await inv().all()).map((r) => r.serial).sort();
  const revocations = () =>
    Revocations.open({ store: opened.store.revocations, tokens: opened.store.tokens, inventory: inv(), audit: opened.store.audit, trustDomain: TrustDomain.parse(TD), clock: { nowMs: () => NOW }, onChange: () => {}, onReloadFailed: loud });
  const banSerial = async (serial: string) => (await revocations()).ban({ kind: 'serial', value: serial, reason: 'leaked', createdBy: 'test' });

  test('dead chains go; a chain whose middle expired long ago and whose tip is live keeps every link: find, lineage and a ban of its old serial answer as before', async () => {
    // a00 → a01 → a02 → a03 (live): the middle expired days ago.
    const live = chainFrom(attested('a000', LONG_AGO), 'a0', [LONG_AGO, LONG_AGO, LIVE]);
    // A thief's branch from a01, renewed twice, dead for days: off every path to a live SVID, but within reach.
    const thief = chainFrom(live[1]!, 'af', [LONG_AGO, LONG_AGO]).slice(1);
    const dead = chainFrom(attested('b000', LONG_AGO), 'b0', [LONG_AGO, LONG_AGO]);
    const lone = attested('c000', LONG_AGO);
    const recent = chainFrom(attested('d000', LONG_AGO), 'd0', [RECENTLY]);
    await record(...live, ...thief, ...dead, lone, ...recent);
    const before = await Promise.all(live.map(async (r) => ({ row: await inv().find(r.serial), renewals: await inv().renewalsOf(r.serial) })));

    expect(await inv().prune(prune())).toBe(dead.length + 1);
    expect(await serials()).toEqual([...live, ...thief, ...recent].map((r) => r.serial).sort());
    // Each link, as a renewal (find, lineage) and the walk (renewalsOf) read it, is the one recorded.
    expect(await Promise.all(live.map(async (r) => ({ row: await inv().find(r.serial), renewals: await inv().renewalsOf(r.serial) })))).toEqual(before);
    expect((await inv().find('a003'))?.lineage).toBe('a000');
    expect(await inv().find('a003')).toMatchObject({ chain: 'a000', depth: 3 });
    // A second prune finds nothing more; the live and recently expired rows were never candidates.
    expect(await inv().prune(prune())).toBe(0);
    // The oldest serial of the chain, expired three days ago, is still known, and its ban reaches the live tip.
    const ban = await banSerial('a000');
    expect(ban).toMatchObject({ created: true, renewals: ['a003'] });
    expect((await revocations()).denyList().serials).toContain('a003');
    // What went is forgotten: its serial is unknown now (it had no live SVID renewed from it).
    await expect(banSerial('b001')).rejects.toMatchObject({ code: 'TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL' });
  });

  test('a long-lived chain keeps the rows `reach` renewals above its kept ones; further up they go, a dead side branch within reach stays', async () => {
    const rows = chainFrom(attested('e000', LONG_AGO), 'e0', [LONG_AGO, LONG_AGO, LONG_AGO, LONG_AGO, LONG_AGO, RECENTLY, LIVE]);
    const side = renewal('ef01', rows[5]!, LONG_AGO);
    await record(...rows, side);
    // Kept: depth 6 (recently expired) and 7 (live); reach 2: depth 4 and deeper stay.
    expect(await inv().prune(prune({ reach: 2 }))).toBe(4);
    expect(await serials()).toEqual(['e004', 'e005', 'e006', 'e007', 'ef01']);
    expect((await inv().renewalsOf('e004')).map((r) => r.serial)).toEqual(['e005']);
    // The shallowest row left, `reach` above the shallowest kept one, still leads a ban to the live tip.
    expect(await banSerial('e004')).toMatchObject({ renewals: ['e007'] });
  });

  test('rows recorded before chains (and before lineage) stay while a chain grown from one of them keeps a live row; then they all go', async () => {
    // 1000 → 1001 → 1002 from before lineage; 1002 renewed after the upgrade: 2001 (chain 1002, depth 1) → 2002 (live).
    const old = chainFrom(attested('1000', LONG_AGO, 'no-lineage'), '10', [LONG_AGO, LONG_AGO], 'no-lineage');
    const grown = chainFrom(old[2]!, '20', [LONG_AGO, LIVE]).slice(1);
    // A dead chain from before chains (lineage recorded), and a dead one grown from an old SVID.
    const oldDead = chainFrom(attested('3000', LONG_AGO, 'no-chain'), '30', [LONG_AGO], 'no-chain');
    const deadGrown = renewal('4001', oldDead[1]!, LONG_AGO);
    await record(...old, ...grown, ...oldDead, deadGrown);
    expect(await inv().find('1001')).not.toHaveProperty('chain');

    // Only the dead chain grown from an old row goes: the old rows' links are not measured, so they all stay.
    expect(await inv().prune(prune())).toBe(1);
    expect(await serials()).toEqual([...old, ...grown, ...oldDead].map((r) => r.serial).sort());
    expect(await banSerial('1000')).toMatchObject({ created: true, renewals: ['2002'] });

    // Once nothing grown from them is kept (2002 expired past the keep), the old rows go with that chain.
    expect(await inv().prune(prune({ cutoffMs: LIVE + 1 }))).toBe(old.length + grown.length + oldDead.length);
    expect(await serials()).toEqual([]);
  });

  test('an old row itself unexpired at the cutoff keeps all the old rows', async () => {
    const old = chainFrom(attested('5000', LONG_AGO, 'no-chain'), '50', [RECENTLY], 'no-chain');
    const oldDead = attested('6000', LONG_AGO, 'no-lineage');
    await record(...old, oldDead);
    expect(await inv().prune(prune())).toBe(0);
    expect(await inv().prune(prune({ cutoffMs: NOW }))).toBe(3);
  });

  test('a chain grown from an old row keeps them only while its kept rows are within reach of it', async () => {
    const old = chainFrom(attested('7000', LONG_AGO, 'no-chain'), '70', [LONG_AGO], 'no-chain');
    const grown = chainFrom(old[1]!, '80', [LONG_AGO, LONG_AGO, LIVE]).slice(1);
    await record(...old, ...grown);
    // The live 8003 is 3 renewals below the old 7001: with reach 2 no ban of an old row reaches it.
    expect(await inv().prune(prune({ reach: 2 }))).toBe(old.length);
    expect(await serials()).toEqual(['8001', '8002', '8003']);
  });

  test('at most `batch` rows a statement and `maxRows` a prune; a probe row left behind is a dead chain', async () => {
    const lone = Array.from({ length: 25 }, (_, i) => attested(`${(0xd100 + i).toString(16)}`, LONG_AGO));
    await record(...lone, PROBE_ROW);
    expect(await inv().prune(prune({ batch: 4, maxRows: 10 }))).toBe(10);
    expect(await inv().prune(prune({ batch: 4, maxRows: 10 }))).toBe(10);
    expect(await inv().prune(prune({ batch: 4, maxRows: 10 }))).toBe(6);
    expect(await serials()).toEqual([]);
  });
});
