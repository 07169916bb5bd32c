// The TPM nonce store (store-contract.ts NonceStore) against both implementations: a nonce is spent once, also
// when many spends race (two PostgreSQL stores on one database, as two replicas); expired rows are pruned and live
// ones kept; the seal key is the first writer's for every replica and survives a restart (SQLite reopened).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openSqliteStore } from '../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import { NONCE_SEAL_KEY, type NonceStore } from '../../../control-plane/src/store/store-contract.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore, type TestPgStore } from '../../helpers/postgres-store.js';
import { makeTempDir } from '../../helpers/run.js';

const key = (byte: number) => Buffer.alloc(32, byte);

/** The behaviour both implementations share; `id` keeps the suites' rows apart. */
function sharedChecks(kind: string, nonces: () => NonceStore): void {
  test(`${kind}: a nonce is spent once; another nonce is its own`, async () => {
    expect(await nonces().spendOnce(`${kind}-a`, 10_000)).toBe(true);
    expect(await nonces().spendOnce(`${kind}-a`, 10_000)).toBe(false);
    expect(await nonces().spendOnce(`${kind}-a`, 99_000)).toBe(false);
    expect(await nonces().spendOnce(`${kind}-b`, 10_000)).toBe(true);
  });

  test(`${kind}: prune forgets the expired nonces only`, async () => {
    await nonces().spendOnce(`${kind}-old`, 1_000);
    await nonces().spendOnce(`${kind}-live`, 50_000);
    expect(await nonces().prune(1_000)).toBeGreaterThanOrEqual(1);
    // Pruned: spendable again (the seal refuses an expired nonce before it gets here).
    expect(await nonces().spendOnce(`${kind}-old`, 1_000)).toBe(true);
    expect(await nonces().spendOnce(`${kind}-live`, 50_000)).toBe(false);
  });
}

describe('nonce store: SQLite', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  let store: Awaited<ReturnType<typeof openSqliteStore>>;
  beforeAll(async () => {
    tmp = await makeTempDir();
    store = await openSqliteStore(tmp.dir);
  });
  afterAll(async () => {
    await store?.close();
    await tmp?.cleanup();
  });

  sharedChecks('sqlite', () => store.nonces);

  test('sqlite: the seal key is the first candidate, kept across a restart', async () => {
    expect(await store.nonces.sealKey(key(1))).toEqual(key(1));
    expect(await store.nonces.sealKey(key(2))).toEqual(key(1));
    await store.close();
    store = await openSqliteStore(tmp.dir);
    expect(await store.nonces.sealKey(key(3))).toEqual(key(1));
    expect(await store.meta.get(NONCE_SEAL_KEY)).toBe(key(1).toString('hex'));
  });
});

describe('nonce store: PostgreSQL, two replicas on one database', () => {
  let server: PostgresDatabase;
  let a: TestPgStore;
  let b: TestPgStore;
  beforeAll(async () => {
    server = await openPostgresDatabase();
    [a, b] = await Promise.all([openTestPgStore(server.url), openTestPgStore(server.url)]);
  }, 90_000);
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    await server?.destroy();
  });

  sharedChecks('pg', () => a.store.nonces);

  test('pg: 40 spends of one nonce racing on two replicas: exactly one wins', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store.nonces.spendOnce('raced', 10_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    // Spent on one replica, refused on the other.
    expect(await a.store.nonces.spendOnce('cross', 10_000)).toBe(true);
    expect(await b.store.nonces.spendOnce('cross', 10_000)).toBe(false);
  });

  test('pg: replicas asking for the seal key at once all get the same one', async () => {
    const keys = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => (n % 2 ? a : b).store.nonces.sealKey(key(n))));
    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(1);
    expect([1, 2, 3, 4, 5, 6].map((n) => key(n).toString('hex'))).toContain(keys[0]!.toString('hex'));
    expect(await b.store.nonces.sealKey(key(9))).toEqual(keys[0]);
  });

  test('pg: the table is migrated with its expiry index', async () => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const r = await c.query("SELECT indexname FROM pg_indexes WHERE tablename = 'tpm_nonces' ORDER BY indexname");
      expect(r.rows.map((x: { indexname: string }) => x.indexname)).toEqual(['tpm_nonces_expiry', 'tpm_nonces_pkey']);
    } finally {
      await c.end();
    }
  });
});
