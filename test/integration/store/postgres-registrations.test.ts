// The service registry of several control-plane replicas on one real PostgreSQL server, each replica with its own
// store (pool, LISTEN connection) and registry, changes announced through NOTIFY; the registries' clocks and timers
// are one fake time, so graces pass without sleeping. A replica's restart leaves the other's live sessions alone and
// sweeps its own previous process's after the grace; a killed replica's sessions are swept by the survivor once
// their heartbeat lapses, and a proxy re-registering there supersedes them at once.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { ServiceRegistry } from '../../../control-plane/src/discovery/service-registry.js';
import { FakeTime } from '../../helpers/fake-time.js';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore, type TestPgStore } from '../../helpers/postgres-store.js';
import { until } from '../../helpers/until.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const GRACE = 9_000;
const HEARTBEAT = 3_000;
const reg = (host: string) => ({ service: 'api', endpoint: { host, port: 80, spiffeId: API, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' } satisfies ServiceEndpoint });
const addresses = (r: ServiceRegistry) => r.endpoints('api').map((e) => `${e.address}${e.confirmed ? '' : ' unconfirmed'}`);

let server: PostgresDatabase;
const stores: TestPgStore[] = [];
const registries: ServiceRegistry[] = [];
const time = new FakeTime();

beforeAll(async () => {
  server = await openPostgresDatabase();
}, 90_000);

afterAll(async () => {
  for (const r of registries) r.stop();
  for (const s of stores) await s.dispose();
  await server?.destroy();
});

/** A replica: its own store and a registry named `owner`, wired to the change feed as open-discovery wires it. */
async function replica(owner: string) {
  const s = await openTestPgStore(server.url, { replica: owner, changePollMs: 60_000 });
  stores.push(s);
  let counter = 0;
  const registry = await ServiceRegistry.open({
    clock: time,
    timers: time,
    nextVersion: async () => ++counter,
    graceMs: GRACE,
    owner,
    persistence: s.store.registrations,
    onPersisted: () => void s.store.changes.announce('registrations').catch(() => {}),
  });
  s.store.changes.subscribe('registrations', () => void registry.reloadStored());
  registries.push(registry);
  await until(`${owner} listening`, () => s.store.changes.listening);
  return { store: s, registry };
}

/** Time passes in half-second steps; each waits for the store writes it caused. */
async function pass(ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 500) {
    time.advance(Math.min(500, left));
    await Promise.all(registries.map((r) => r.settled()));
  }
}

async function owners(s: TestPgStore): Promise<[string, string[]][]> {
  const all = await s.store.registrations.loadAll();
  return all.map((x): [string, string[]] => [x.owner, x.registrations.map((r) => r.endpoint.host)]).sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

describe('service registry on PostgreSQL: replicas', () => {
  test('restart of one replica, then the other killed: live sessions stay, dead ones are swept after the grace', async () => {
    const a = await replica('cp-a');
    let b = await replica('cp-b');
    a.registry.openSession(API).replace([reg('127.0.0.1'), reg('127.0.0.3')]);
    b.registry.openSession(API).replace([reg('127.0.0.2')]);
    await pass(500);
    await until('each replica serves the other\'s sessions, remembered', () => addresses(a.registry).length === 3 && addresses(b.registry).length === 3);
    expect(addresses(a.registry)).toEqual(['127.0.0.1:80', '127.0.0.2:80 unconfirmed', '127.0.0.3:80']);

    // B restarts: the registry stops first (its rows stay), the process goes, a new one with a new name comes.
    b.registry.stop();
    await b.store.dispose();
    await pass(500);
    b = await replica('cp-b2');
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed', '127.0.0.2:80 unconfirmed', '127.0.0.3:80 unconfirmed']);
    // Several graces later: A's session is A's, alive; B's previous process's is swept, and both views follow.
    await pass(3 * GRACE);
    expect(await owners(a.store)).toEqual([['cp-a', ['127.0.0.1', '127.0.0.3']]]);
    await until('the swept session leaves both views', () => addresses(a.registry).length === 2 && addresses(b.registry).length === 2);
    expect(addresses(a.registry)).toEqual(['127.0.0.1:80', '127.0.0.3:80']);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed', '127.0.0.3:80 unconfirmed']);

    // A is killed: its pool and LISTEN connection go, no call ends, nothing is removed.
    a.registry.stop();
    await a.store.dispose();
    const lastBeat = (await b.store.store.registrations.loadAll())[0]!.heartbeatAtMs;
    // Its proxy reconnects to B and registers one endpoint again: served, confirmed, at once.
    b.registry.openSession(API).replace([reg('127.0.0.1')]);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80', '127.0.0.3:80 unconfirmed']);
    await pass(lastBeat + GRACE - time.nowMs());
    expect(await owners(b.store)).toEqual([
      ['cp-a', ['127.0.0.1', '127.0.0.3']],
      ['cp-b2', ['127.0.0.1']],
    ]);
    await pass(HEARTBEAT);
    expect(await owners(b.store)).toEqual([['cp-b2', ['127.0.0.1']]]);
    await until('the killed replica\'s endpoint leaves the view', () => addresses(b.registry).length === 1);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80']);
  }, 60_000);
});
