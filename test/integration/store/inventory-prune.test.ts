// The inventory's prune and what a serial ban reaches, against both stores (a fresh SQLite file, a fresh PostgreSQL
// database, per test; the real Revocations): a prune leaves exactly the rows unexpired at its cutoff, whatever chain
// they are in, so a workload that keeps renewing keeps only its last SVIDs; a ban of a serial still held reaches the
// live SVIDs renewed from it by their renewal tree, with every row between them gone (a renewal shorter-lived than
// its parent); a serial whose row went is unknown; rows recorded before chains are followed by their links.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { Revocations } from '../../../control-plane/src/issuance/revocations.js';
import { openSqliteStore } from '../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore, InventoryStore, IssuedSvidRow } from '../../../control-plane/src/store/store-contract.js';
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
const CUTOFF = NOW - KEEP;

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

describe.each(['sqlite', 'postgres'] as const)('inventory prune and serial bans (%s)', (kind) => {
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
  const sorted = (rows: IssuedSvidRow[]) => rows.map((r) => r.serial).sort();
  /** What the upkeep runs: statements of `batch` rows until one deletes fewer. */
  const pruneAll = async (cutoffMs = CUTOFF, batch = 5_000) => {
    let total = 0;
    for (let i = 0; i < 1_000; i++) {
      const n = await inv().prune(cutoffMs, batch);
      total += n;
      if (n < batch) break;
    }
    return total;
  };
  const revocations = (inventory: InventoryStore = inv()) =>
    Revocations.open({ store: opened.store.revocations, tokens: opened.store.tokens, inventory, audit: opened.store.audit, trustDomain: TrustDomain.parse(TD), clock: { nowMs: () => NOW }, onChange: () => {}, onReloadFailed: loud });
  const banSerial = async (serial: string, force = false, inventory?: InventoryStore) => {
    const r = await (await revocations(inventory)).ban({ kind: 'serial', value: serial, reason: 'leaked', createdBy: 'test', force });
    return { ...r, renewals: [...r.renewals].sort() };
  };

  test('a prune leaves only the rows unexpired at its cutoff: a chain renewed 50 times whose SVIDs but the last 2 expired past the keep keeps 2 rows', async () => {
    // a000 → a001 → … → a032 (50 renewals): a031 expired within the keep, a032 live.
    const long = chainFrom(attested('a000', LONG_AGO), 'a0', [...Array<number>(48).fill(LONG_AGO), RECENTLY, LIVE]);
    const dead = chainFrom(attested('b000', LONG_AGO), 'b0', [LONG_AGO, LONG_AGO]);
    const atCutoff = attested('c000', CUTOFF);
    const justAfter = attested('c001', CUTOFF + 1);
    await record(...long, ...dead, atCutoff, justAfter);
    expect(await pruneAll()).toBe(49 + dead.length + 1);
    expect(await serials()).toEqual(sorted([long[49]!, long[50]!, justAfter]));
    expect(await inv().find('a032')).toMatchObject({ lineage: 'a000', chain: 'a000', depth: 50 });
    expect(await pruneAll()).toBe(0);
  });

  test('a ban of a serial still held reaches the live SVIDs renewed from it though every row between them went (renewals shorter-lived than their parent)', async () => {
    // e000, a live SVID, renewed for a short TTL: e001 and e002 expired days ago, e003 and e004 are live.
    const e = chainFrom(attested('e000', LIVE), 'e0', [LONG_AGO, LONG_AGO, LIVE, LIVE]);
    // f000 expired within the keep (kept); its renewals f001, f002 expired days ago, f003 is live.
    const f = chainFrom(attested('f000', RECENTLY), 'f0', [LONG_AGO, LONG_AGO, LIVE]);
    await record(...e, ...f);
    expect(await pruneAll()).toBe(4);
    expect(await serials()).toEqual(['e000', 'e003', 'e004', 'f000', 'f003']);
    expect(await banSerial('f000')).toMatchObject({ created: true, renewals: ['f003'] });
    expect(await banSerial('e000')).toMatchObject({ created: true, renewals: ['e003', 'e004'] });
    const r = await revocations();
    expect([...r.denyList().serials].sort()).toEqual(['e000', 'e003', 'e004', 'f003']);
    // Each names the serial whose ban reached it, so lifting that one names them.
    expect((await r.list()).find((b) => b.value === 'e004')).toMatchObject({ reason: 'renewed from banned serial e000', createdBy: 'test' });
  });

  test('within one chain a ban also reaches a second branch deeper than the banned SVID (a cloned key renewing); shallower rows and other chains stay', async () => {
    // aa00 renewed twice: aa01 (renewed again: aa02) and ab01 (a second holder, renewed again: ab02), all live.
    const g = chainFrom(attested('aa00', LIVE), 'aa', [LIVE, LIVE]);
    const h = chainFrom(g[0]!, 'ab', [LIVE, LIVE]).slice(1);
    const other = chainFrom(attested('ac00', LIVE), 'ac', [LIVE]);
    await record(...g, ...h, ...other);
    expect(await banSerial('aa01')).toMatchObject({ created: true, renewals: ['aa02', 'ab02'] });
    expect([...(await revocations()).denyList().serials].sort()).toEqual(['aa01', 'aa02', 'ab02']);
  });

  test('a serial whose row went is unknown and nothing is banned; --force bans it and what is still held of its renewals', async () => {
    const j = chainFrom(attested('ad00', LONG_AGO), 'ad', [LIVE, LIVE]);
    await record(...j);
    expect(await pruneAll()).toBe(1);
    await expect(banSerial('ad00')).rejects.toMatchObject({ code: 'TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL' });
    expect(await (await revocations()).list()).toEqual([]);
    expect(await banSerial('ad00', true)).toMatchObject({ created: true, renewals: ['ad01', 'ad02'] });
  });

  test('rows recorded before chains: a ban follows their renewal links into the chain grown from them; they go by expiry like any row, and a walk through one that went stops there', async () => {
    // 1000 → 1001 from before lineage, both expired within the keep; 1001 renewed after the upgrade: 2001 (chain
    // 1001, depth 1), expired days ago, → 2002 (live). With 2001 gone the walk still reaches 2002: a renewal of an
    // SVID recorded without a chain begins the chain named by that SVID's serial.
    const old = chainFrom(attested('1000', RECENTLY, 'no-lineage'), '10', [RECENTLY], 'no-lineage');
    const grown = chainFrom(old[1]!, '20', [LONG_AGO, LIVE]).slice(1);
    // 3000 → 3001 (expired days ago) → 3002 (live), all from before chains.
    const cut = chainFrom(attested('3000', RECENTLY, 'no-chain'), '30', [LONG_AGO, LIVE], 'no-chain');
    await record(...old, ...grown, ...cut);
    expect(await inv().find('1001')).not.toHaveProperty('chain');
    expect(await inv().find('2002')).toMatchObject({ chain: '1001', depth: 2 });
    expect(await pruneAll()).toBe(2);
    expect(await serials()).toEqual(['1000', '1001', '2002', '3000', '3002']);
    expect(await banSerial('1000')).toMatchObject({ created: true, renewals: ['2002'] });
    // 3001 went: the walk from 3000 ends there (such rows all expire within a TTL and the keep of the upgrade).
    expect(await banSerial('3000')).toMatchObject({ created: true, renewals: [] });
    expect(await pruneAll(LIVE)).toBe(5);
    expect(await serials()).toEqual([]);
  });

  test('a renewal recorded between the read of a chain and the ban of its origin is found by the next read', async () => {
    const m = chainFrom(attested('ba00', LIVE), 'ba', [LIVE]);
    await record(...m);
    let reads = 0;
    // The store as the ban sees it: right after its first read, ba01 renews (its check found no ban on ba01 yet).
    const racing = new Proxy(inv(), {
      get: (target, key) => {
        if (key === 'liveInChain') {
          return async (...args: Parameters<InventoryStore['liveInChain']>) => {
            const rows = await target.liveInChain(...args);
            if (reads++ === 0) await target.record(renewal('ba02', m[1]!, LIVE));
            return rows;
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    expect(await banSerial('ba00', false, racing)).toMatchObject({ created: true, renewals: ['ba01', 'ba02'] });
    expect(reads).toBeGreaterThanOrEqual(2);
  });

  test('liveInChain: the rows of one chain unexpired at a time and deeper than a depth, shallowest first, at most the limit', async () => {
    const k = chainFrom(attested('ae00', LIVE), 'ae', [RECENTLY, LIVE, LIVE + 1]);
    const other = chainFrom(attested('af00', LIVE), 'af', [LIVE]);
    await record(...k, ...other);
    const found = async (depth: number, nowMs = NOW, limit = 10) => (await inv().liveInChain('ae00', depth, nowMs, limit)).map((r) => r.serial);
    expect(await found(0)).toEqual(['ae02', 'ae03']);
    expect(await found(2)).toEqual(['ae03']);
    expect(await found(0, NOW, 1)).toEqual(['ae02']);
    expect(await found(0, LIVE)).toEqual(['ae03']);
    expect(await inv().liveInChain('ae00', 0, NOW, 10)).toEqual([k[2], k[3]]);
  });

  test('at most `maxRows` rows a statement, oldest first; a probe row left behind goes', async () => {
    const lone = Array.from({ length: 25 }, (_, i) => attested(`${(0xd100 + i).toString(16)}`, LONG_AGO + i));
    await record(...lone, PROBE_ROW, attested('d200', LIVE));
    expect(await inv().prune(CUTOFF, 10)).toBe(10);
    expect(await inv().find(PROBE_ROW.serial)).toBeUndefined();
    expect(await inv().find('d108')).toBeUndefined();
    expect(await inv().find('d109')).toBeDefined();
    expect(await inv().prune(CUTOFF, 10)).toBe(10);
    expect(await inv().prune(CUTOFF, 10)).toBe(6);
    expect(await serials()).toEqual(['d200']);
  });
});
