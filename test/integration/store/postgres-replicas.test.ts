// Several control-plane replicas on one real PostgreSQL server, each with its own pool: single-use tokens (each spent
// with the one SVID it paid for), counters
// and "audit the expiry once" hold under races; a change announced by one replica reaches the others; the advisory
// lock elects one leader, hands over on close and on a killed connection with a higher fencing term; the shared CA
// records are compare-and-swap and refuse a stale leader.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../common/errors.js';
import { LEADER_LOCK_KEY } from '../../../control-plane/src/store/postgres/pg-leader-lock.js';
import type { IssuedSvidRow } from '../../../control-plane/src/store/store-contract.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore, type TestPgStore } from '../../helpers/postgres-store.js';
import { until } from '../../helpers/until.js';

let server: PostgresDatabase;
let a: TestPgStore;
let b: TestPgStore;

beforeAll(async () => {
  server = await openPostgresDatabase();
  // Fast leader retries and change polls keep the hand-over tests short; the defaults are 3 s and 5 s.
  [a, b] = await Promise.all([openTestPgStore(server.url, { leaderRetryMs: 200, changePollMs: 60_000 }), openTestPgStore(server.url, { leaderRetryMs: 200, changePollMs: 60_000 })]);
}, 90_000);

afterAll(async () => {
  await a?.dispose();
  await b?.dispose();
  await server?.destroy();
});

/** The SVID a token is spent for (a token is spent only with one: InventoryStore.recordWithToken). */
const svid = (serial: string): IssuedSvidRow => ({ serial, spiffeId: 'spiffe://example.org/race', authorityId: 'A', intermediateSerial: 'i1', notBeforeMs: 0, notAfterMs: 1, issuedAtMs: 0, attestedAs: 'join_token:x', kind: 'attest', caller: 'test' });

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => (isTesseraError(e) ? e.code : String(e)),
  );

describe('postgres replicas: races decided by the database', () => {
  test('one token spent concurrently 60 times from two replicas: exactly one spend wins, and only its SVID is recorded', async () => {
    for (let round = 0; round < 5; round++) {
      const rec = await a.store.tokens.create(`race-${round}`, 'spiffe://example.org/race', Date.now(), 60_000);
      const spends = Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).store.inventory.recordWithToken(svid(`race-${round}-${i}`), rec.hash, Date.now()));
      const results = await Promise.all(spends);
      expect(results.filter(Boolean).length, `round ${round}`).toBe(1);
      const rows = (await a.store.inventory.all()).filter((r) => r.serial.startsWith(`race-${round}-`));
      expect(rows.map((r) => r.serial)).toEqual([`race-${round}-${results.indexOf(true)}`]);
    }
  });

  test('spend racing revoke on one token: exactly one of them wins', async () => {
    for (let round = 0; round < 10; round++) {
      const rec = await a.store.tokens.create(`spend-revoke-${round}`, 'spiffe://example.org/race', Date.now(), 60_000);
      const [spent, revoked] = await Promise.all([a.store.inventory.recordWithToken(svid(`spend-revoke-${round}`), rec.hash, Date.now()), b.store.tokens.revoke(rec.hash, Date.now())]);
      expect(Number(spent) + Number(revoked), `round ${round}`).toBe(1);
      expect((await b.store.inventory.find(`spend-revoke-${round}`)) !== undefined, `round ${round}`).toBe(spent);
    }
  });

  test('a counter incremented 100 times from two replicas at once hands out 1..100, each once', async () => {
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).store.meta.increment('race.counter')));
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await a.store.meta.get('race.counter')).toBe('100');
  });

  test('a grant expiry marked by both replicas at once is audited by exactly one', async () => {
    for (let round = 0; round < 10; round++) {
      await a.store.grants.add({ id: `race-grant-${round}`, to: 'spiffe://example.org/x', from: ['spiffe://example.org/y'], reason: 'r', expiresAtMs: 1 });
      const marks = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).store.grants.markExpiryAudited(`race-grant-${round}`)));
      expect(marks.filter(Boolean).length, `round ${round}`).toBe(1);
    }
    expect(await b.store.grants.expiredUnaudited(2)).toEqual([]);
  });

  test('audit rows of both replicas meet in one table; recent() on either sees both', async () => {
    a.store.audit.record(1, { event: 'replica.a', caller: 'a' });
    b.store.audit.record(2, { event: 'replica.b', caller: 'b' });
    await Promise.all([a.store.audit.flush(), b.store.audit.flush()]);
    expect((await a.store.audit.recent('replica.')).map((e) => e.caller).sort()).toEqual(['a', 'b']);
    expect((await b.store.audit.recent('replica.')).map((e) => e.caller).sort()).toEqual(['a', 'b']);
  });
});

describe('postgres replicas: the change feed', () => {
  test('an announcement in one replica fires the subscriber in the other, per topic', async () => {
    await until('both listening', () => a.store.changes.listening && b.store.changes.listening);
    const seen: string[] = [];
    const off = [b.store.changes.subscribe('revocations', () => seen.push('revocations')), b.store.changes.subscribe('ca', () => seen.push('ca'))];
    try {
      await a.store.changes.announce('revocations');
      await until('b saw revocations', () => seen.includes('revocations'), 5_000, 20);
      expect(seen).not.toContain('ca');
    } finally {
      for (const f of off) f();
    }
  });

  test('a listener whose connection is killed reconnects and fires every topic to catch up', async () => {
    await until('b listening', () => b.store.changes.listening);
    const seen = new Set<string>();
    const off = (['ca', 'grants', 'revocations', 'registrations', 'jwt'] as const).map((t) => b.store.changes.subscribe(t, () => seen.add(t)));
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      // The LISTEN sessions of every store on this database: kill them all (the others reconnect too, which is harmless).
      const r = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN tessera_changes' AND datname = $1", [server.database]);
      expect(r.rowCount).toBeGreaterThan(0);
      await until('every topic fired after the reconnect', () => seen.size === 5, 10_000, 20);
      await until('b listening again', () => b.store.changes.listening);
      expect(b.log.lines.some((l) => l.msg.includes('change feed lost'))).toBe(true);
    } finally {
      await admin.end();
      for (const f of off) f();
    }
  });
});

describe('postgres replicas: the leader lock', () => {
  test('two replicas: one leader; it steps down on close and the other takes over with a higher term', async () => {
    const x = await openTestPgStore(server.url, { leaderRetryMs: 100 });
    const y = await openTestPgStore(server.url, { leaderRetryMs: 100 });
    try {
      const changes: string[] = [];
      x.store.leader.onChange((l, t) => changes.push(`x:${l}:${t}`));
      x.store.leader.start();
      y.store.leader.start();
      await until('one leader', () => x.store.leader.isLeader() || y.store.leader.isLeader());
      await new Promise((r) => setTimeout(r, 400));
      expect(Number(x.store.leader.isLeader()) + Number(y.store.leader.isLeader())).toBe(1);
      const [leader, follower] = x.store.leader.isLeader() ? [x, y] : [y, x];
      const term1 = leader.store.leader.term!;
      expect(term1).toBeGreaterThan(0);
      expect(follower.store.leader.term).toBeNull();
      await leader.store.close();
      expect(leader.store.leader.isLeader()).toBe(false);
      await until('the follower leads', () => follower.store.leader.isLeader(), 5_000, 20);
      expect(follower.store.leader.term).toBeGreaterThan(term1);
      if (leader === x) expect(changes).toEqual([`x:true:${term1}`, 'x:false:null']);
    } finally {
      await x.dispose();
      await y.dispose();
    }
  });

  test("a leader whose connection is killed loses leadership at once; the other takes over; the old term is fenced off", async () => {
    // x tries again only after a minute (as a replica cut off from the database would not get back in): y takes over.
    const x = await openTestPgStore(server.url, { leaderRetryMs: 60_000, replica: 'leader-x' });
    const y = await openTestPgStore(server.url, { leaderRetryMs: 100, replica: 'leader-y' });
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      x.store.leader.start();
      await until('x leads', () => x.store.leader.isLeader());
      y.store.leader.start();
      const oldTerm = x.store.leader.term!;
      const v0 = (await x.store.authority.load())?.version ?? null;
      const v1 = await x.store.authority.commit({ step: 'x' }, [], v0, { term: oldTerm });
      let lostAt = 0;
      x.store.leader.onChange((l) => {
        if (!l) lostAt = Date.now();
      });
      // The lock's session, by the pid that holds the advisory lock (in this database: advisory locks are per database).
      const key = [String(LEADER_LOCK_KEY >> 32n), String(LEADER_LOCK_KEY & 0xffff_ffffn), server.database];
      // Taken before the kill is sent: x may notice the lost session before the admin query's answer arrives here.
      const killedAt = Date.now();
      const killed = await admin.query("SELECT pg_terminate_backend(pid) AS ok FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = $1::oid AND objid = $2::oid AND database = (SELECT oid FROM pg_database WHERE datname = $3)", key);
      expect(killed.rows.map((r) => r.ok)).toEqual([true]);
      await until('x knows it is no longer the leader', () => !x.store.leader.isLeader(), 5_000, 10);
      expect(lostAt).toBeGreaterThanOrEqual(killedAt);
      await until('y leads', () => y.store.leader.isLeader(), 5_000, 20);
      expect(y.store.leader.term).toBeGreaterThan(oldTerm);
      // x still believes (as a paused process might) in its old term: the database refuses it.
      const stale = await x.store.authority.commit({ step: 'x-stale' }, [], v1, { term: oldTerm }).catch((e) => e);
      expect(isTesseraError(stale, 'TESSERA_ERR_CA_CONFLICT')).toBe(true);
      expect(stale.details.reason).toBe('stale_term');
      expect((await y.store.authority.load())?.state).toEqual({ step: 'x' });
      expect(await y.store.authority.commit({ step: 'y' }, [], v1, { term: y.store.leader.term! })).toBe(v1 + 1);
    } finally {
      await admin.end();
      await x.dispose();
      await y.dispose();
    }
  });
});

describe('postgres replicas: shared CA records', () => {
  test('load before any commit is null; commit, load, then a commit from an old version is a conflict', async () => {
    const admin = new pg.Client({ connectionString: new URL(`/${server.database}`, server.adminUrl).toString() });
    await admin.connect();
    await admin.query('DELETE FROM ca_state; DELETE FROM ca_material');
    await admin.end();
    expect(await a.store.authority.load()).toBeNull();
    const v1 = await a.store.authority.commit({ authorities: ['r1'] }, [{ name: 'r1.crt', pem: 'PEM-1' }, { name: 'r1.key', pem: "KEY-'1" }], null);
    expect(v1).toBe(1);
    const loaded = await b.store.authority.load();
    expect(loaded?.version).toBe(1);
    expect(loaded?.state).toEqual({ authorities: ['r1'] });
    expect([...(loaded?.material ?? [])]).toEqual([
      ['r1.crt', 'PEM-1'],
      ['r1.key', "KEY-'1"],
    ]);
    const v2 = await b.store.authority.commit({ authorities: ['r1', 'r2'] }, [{ name: 'r2.crt', pem: 'PEM-2' }], 1);
    expect(v2).toBe(2);
    expect(await codeOf(a.store.authority.commit({ authorities: ['r1', 'other'] }, [{ name: 'other.crt', pem: 'X' }], 1))).toBe('TESSERA_ERR_CA_CONFLICT');
    expect(await codeOf(a.store.authority.commit({}, [], null))).toBe('TESSERA_ERR_CA_CONFLICT');
    const after = await a.store.authority.load();
    expect(after?.state).toEqual({ authorities: ['r1', 'r2'] });
    expect([...(after?.material.keys() ?? [])]).toEqual(['r1.crt', 'r1.key', 'r2.crt']);
    expect(await a.store.authority.commit({ authorities: ['r2'] }, [], 2, undefined, ['r1.crt', 'r1.key'])).toBe(3);
    expect([...((await b.store.authority.load())?.material.keys() ?? [])]).toEqual(['r2.crt']);
  });

  test('ten commits racing from one version: exactly one wins, the others get TESSERA_ERR_CA_CONFLICT', async () => {
    const base = (await a.store.authority.load())?.version ?? null;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => codeOf((i % 2 ? a : b).store.authority.commit({ writer: i }, [{ name: `m${i}`, pem: `p${i}` }], base))));
    expect(results.filter((r) => r === 'ok').length).toBe(1);
    expect(results.filter((r) => r === 'TESSERA_ERR_CA_CONFLICT').length).toBe(9);
    const winner = results.indexOf('ok');
    const now = await b.store.authority.load();
    expect(now?.state).toEqual({ writer: winner });
    expect([...(now?.material.keys() ?? [])].filter((k) => /^m\d$/.test(k))).toEqual([`m${winner}`]);
  });
});
