// JWT-SVID signing keys shared by replicas on one real PostgreSQL: the first key is created once however many
// replicas start together, every replica signs with and publishes the same keys (a token minted on one validates
// against what another publishes), the leader alone rotates, the others follow through refresh(), and a replica that
// lost the lead cannot rotate (its commit is fenced off).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signJwtSvid, validateJwtSvid } from '../../../common/spiffe/jwt-svid.js';
import { sharedJwtKeys } from '../../../control-plane/src/ca/shared-jwt-keys.js';
import { JwtKeys } from '../../../control-plane/src/ca/jwt-keys.js';
import { FakeTime } from '../../helpers/fake-time.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore, type TestPgStore } from '../../helpers/postgres-store.js';
import { until } from '../../helpers/until.js';

const DAY = 24 * 3_600_000;
const OVERLAP = 3_630_000;
let server: PostgresDatabase;
const opened: TestPgStore[] = [];

beforeAll(async () => {
  server = await openPostgresDatabase();
}, 120_000);
afterAll(async () => {
  for (const s of opened) await s.dispose();
  await server?.destroy();
});

async function replica(name: string, time: FakeTime, leads: () => boolean) {
  const s = await openTestPgStore(server.url, { replica: name, leaderRetryMs: 100 });
  opened.push(s);
  const backend = sharedJwtKeys(s.store.jwtKeys, 'test database', () => s.store.leader.term);
  const open = () => JwtKeys.open({ backend, leads, clock: time, rotateEveryMs: DAY, overlapMs: OVERLAP });
  return { s, open };
}

const tokenOf = (keys: JwtKeys, time: FakeTime) => {
  const k = keys.active();
  return signJwtSvid({ privateKey: k.privateKey, keyId: k.keyId, spiffeId: 'spiffe://example.org/w', audience: ['a'], issuedAtMs: time.nowMs(), expiresAtMs: time.nowMs() + 300_000 });
};
const bundleOf = (keys: JwtKeys) => new Map([['example.org', new Map(keys.published().map((k) => [k.keyId, k.publicKey]))]]);

describe('JWT-SVID keys in the shared store', () => {
  test('replicas opening together create one key; a token from one validates against another; the leader rotates, the other follows', async () => {
    const time = new FakeTime();
    const a = await replica('jwt-a', time, () => a.s.store.leader.isLeader());
    const b = await replica('jwt-b', time, () => b.s.store.leader.isLeader());
    // Both open on an empty table at once: one creates, the other loses the race and loads it.
    const [ka, kb] = await Promise.all([a.open(), b.open()]);
    expect(ka.events.length + kb.events.length).toBe(1);
    expect(kb.keys.active().keyId).toBe(ka.keys.active().keyId);
    expect(validateJwtSvid(tokenOf(ka.keys, time), 'a', bundleOf(kb.keys), time.nowMs()).spiffeId.toString()).toBe('spiffe://example.org/w');

    a.s.store.leader.start();
    await until('a leads', () => a.s.store.leader.isLeader());
    b.s.store.leader.start();
    const first = ka.keys.active().keyId;
    time.set(time.nowMs() + DAY);
    // b does not lead: its maintenance changes nothing; a's rotates.
    expect(await kb.keys.maintain()).toEqual([]);
    expect((await ka.keys.maintain()).map((e) => e.event)).toEqual(['jwt_key.retired', 'jwt_key.created']);
    expect(await kb.keys.refresh()).toBe(true);
    expect(kb.keys.active().keyId).toBe(ka.keys.active().keyId);
    expect(kb.keys.published().map((k) => k.keyId)).toEqual([first, ka.keys.active().keyId]);
    expect(await kb.keys.refresh()).toBe(false);
    // A token the new key signed on b validates against what a publishes.
    expect(validateJwtSvid(tokenOf(kb.keys, time), 'a', bundleOf(ka.keys), time.nowMs()).keyId).toBe(ka.keys.active().keyId);

    // a loses the lead; b takes it. A process still acting on a's old term cannot rotate: its commit is fenced off.
    const aTerm = a.s.store.leader.term!;
    await a.s.store.leader.stop();
    await until('b leads', () => b.s.store.leader.isLeader(), 10_000, 50);
    time.set(time.nowMs() + DAY);
    const staleBackend = sharedJwtKeys(a.s.store.jwtKeys, 'test database', () => aTerm);
    const stale = await JwtKeys.open({ backend: staleBackend, leads: () => true, clock: time, rotateEveryMs: DAY, overlapMs: OVERLAP }).catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: 'TESSERA_ERR_CA_CONFLICT', details: { reason: 'stale_term' } });
    // The new leader rotates, and drops the first key now past its overlap.
    expect((await kb.keys.maintain()).map((e) => e.event)).toEqual(['jwt_key.retired', 'jwt_key.created', 'jwt_key.removed']);
    expect(await ka.keys.refresh()).toBe(true);
    expect(ka.keys.published().map((k) => k.keyId)).toEqual(kb.keys.published().map((k) => k.keyId));
    expect(ka.keys.published().map((k) => k.keyId)).not.toContain(first);
  }, 60_000);
});
