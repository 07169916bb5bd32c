// A leader that stops running but keeps its PostgreSQL session (audit 54b F1): two real control-plane replicas on
// one real PostgreSQL with `store.leaderLease: 3s`. The leader gets SIGSTOP (its session stays up: the kernel
// answers for it); the other replica ends the stale holder's session and leads with a higher term within the lease
// plus two beats. The old leader, resumed with SIGCONT, steps down before any leader-only step: it logs the lapse
// (or the lost connection) and follows, the term in the database stays the new leader's, and nothing of it is
// refused as a stale-term write.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dbQuery, type HaReplica, leaderName, startHaReplicas } from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const LEASE_MS = 3_000;

let server: PostgresDatabase;
let cleanup: () => Promise<void>;
let replicas: HaReplica[] = [];

beforeAll(async () => {
  server = await openPostgresDatabase();
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  replicas = await startHaReplicas(dir, server.url, 2, { store: 'leaderLease: 3s' });
  await until('a leader', async () => (await leaderName(server.url)) !== undefined, 15_000, 100);
}, 90_000);

afterAll(async () => {
  for (const r of replicas) {
    r.proc.kill('SIGCONT');
    await r.stop();
  }
  await server?.destroy();
  await cleanup?.();
});

const term = async () => Number((await dbQuery<{ term: string }>(server.url, 'SELECT term FROM leader_term WHERE id = 1'))[0]!.term);
const logOf = (r: HaReplica) => `${r.stdout()}${r.stderr()}`;
const count = (text: string, what: string) => text.split(what).length - 1;

describe('a frozen leader (SIGSTOP) on PostgreSQL', () => {
  test('another replica leads within the lease; the resumed old leader steps down without a leader-only write', async () => {
    const leader = (await leaderName(server.url))!;
    const old = replicas.find((r) => r.name === leader)!;
    const other = replicas.find((r) => r.name !== leader)!;
    const termBefore = await term();
    const followsBefore = count(logOf(old), 'this replica follows');

    const stoppedAt = Date.now();
    old.proc.kill('SIGSTOP');
    // The bound is the lease plus two beats (a third of the lease here): 5 s; the wait allows for a slow machine.
    await until('the other replica leads', async () => (await leaderName(server.url)) === other.name, 30_000, 100);
    const tookMs = Date.now() - stoppedAt;
    const newTerm = await term();
    expect(newTerm).toBeGreaterThan(termBefore);
    await until('the other replica logs that it leads', () => count(logOf(other), 'this replica leads') >= 1, 10_000, 50);
    expect(logOf(other)).toContain("the leader's lease ran out (not renewed)");

    old.proc.kill('SIGCONT');
    await until('the old leader steps down', () => count(logOf(old), 'this replica follows') > followsBefore, 15_000, 50);
    const oldLog = logOf(old);
    expect(/leadership lease lapsed here|leadership lost with the PostgreSQL connection|leadership taken over/.test(oldLog)).toBe(true);
    // It did not lead again, and nothing it tried was refused as a stale leader's write.
    expect(await leaderName(server.url)).toBe(other.name);
    expect(await term()).toBe(newTerm);
    expect(oldLog).not.toContain('stale_term');
    expect(oldLog).not.toMatch(/leader term \d+ is stale/);
    console.info(`ha-frozen-leader: lease ${LEASE_MS} ms, taken over ${tookMs} ms after SIGSTOP`);
  }, 90_000);
});
