// Several service registries (control-plane replicas) on one registration store — a real SQLite file, their clocks
// agreeing (one fake time), changes announced through the in-process change feed as PostgreSQL's would be: each
// owns and heartbeats its own sessions; a restarted replica adopts nothing and removes nothing that is alive; a
// killed replica's sessions are swept after the grace by the survivor, and a proxy re-registering there supersedes
// them at once; a session swept while its owner was cut off is stored again.
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { type RegistrationPersistence, ServiceRegistry } from '../../../../control-plane/src/discovery/service-registry.js';
import { LocalChangeFeed } from '../../../../control-plane/src/store/local-change-feed.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteRegistrationStore } from '../../../../control-plane/src/store/sqlite/sqlite-registration-store.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const API = 'spiffe://example.org/ns/default/sa/api';
/** A third of it is the heartbeat period; a stored session is swept once its heartbeat is older than the grace. */
const GRACE = 9_000;
const HEARTBEAT = 3_000;
const ep = (host: string, port = 80): ServiceEndpoint => ({ host, port, spiffeId: API, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
const reg = (host: string) => ({ service: 'api', endpoint: ep(host) });
const addresses = (r: ServiceRegistry) => r.endpoints('api').map((e) => `${e.address}${e.confirmed ? '' : ' unconfirmed'}`);

describe('ServiceRegistry: replicas on one store', () => {
  const tmp = tempDirPerTest();
  let cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.reverse()) c();
    cleanup = [];
  });

  function mesh() {
    const db = openDatabase(join(tmp.dir, 'registrations.db'));
    const store = new SqliteRegistrationStore(db);
    const time = new FakeTime();
    const feed = new LocalChangeFeed();
    const open: ServiceRegistry[] = [];
    cleanup.push(() => {
      for (const r of open) r.stop();
      db.close();
    });
    /** A replica named `owner`: announces its store changes, reloads on every announcement (its own included). */
    const replica = async (owner: string, persistence: RegistrationPersistence = store) => {
      let announced = 0;
      let counter = 0;
      const registry = await ServiceRegistry.open({
        clock: time,
        timers: time,
        nextVersion: async () => ++counter,
        graceMs: GRACE,
        owner,
        persistence,
        onPersisted: () => {
          announced++;
          void feed.announce('registrations');
        },
      });
      feed.subscribe('registrations', () => void registry.reloadStored());
      open.push(registry);
      return { registry, announced: () => announced };
    };
    /** Lets time pass in half-second steps, each followed by every store write, announcement and reload it caused. */
    const pass = async (ms: number) => {
      for (let left = ms; left > 0; left -= 500) {
        time.advance(Math.min(500, left));
        for (let i = 0; i < 3; i++) {
          await Promise.all(open.map((r) => r.settled()));
          await new Promise((r) => setImmediate(r));
        }
      }
    };
    const owners = async () => (await store.loadAll()).map((s) => [s.owner, s.registrations.map((r) => r.endpoint.host)]).sort();
    return { store, time, replica, pass, owners };
  }

  test("a replica's restart adopts nothing and removes nothing alive; its previous process's sessions are swept after the grace", async () => {
    const { store, time, replica, pass, owners } = mesh();
    const a = await replica('cp-a');
    const b = await replica('cp-b');
    a.registry.openSession(API).replace([reg('127.0.0.1')]);
    const onB = b.registry.openSession(API);
    onB.replace([reg('127.0.0.2')]);
    await pass(1_000);
    expect(addresses(a.registry)).toEqual(['127.0.0.1:80', '127.0.0.2:80 unconfirmed']);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed', '127.0.0.2:80']);

    // B restarts: its registry stops before its calls end (the shutdown order), a new process with a new name opens.
    b.registry.stop();
    onB.close();
    await pass(1_000);
    const b2 = await replica('cp-b2');
    expect(addresses(b2.registry)).toEqual(['127.0.0.1:80 unconfirmed', '127.0.0.2:80 unconfirmed']);
    expect(await owners()).toEqual([
      ['cp-a', ['127.0.0.1']],
      ['cp-b', ['127.0.0.2']],
    ]);
    // B's old session was last written at 0: it is kept while younger than the grace, swept at the next tick after.
    await pass(6_500);
    expect(await owners()).toEqual([
      ['cp-a', ['127.0.0.1']],
      ['cp-b', ['127.0.0.2']],
    ]);
    await pass(HEARTBEAT + 1_000);
    expect(await owners()).toEqual([['cp-a', ['127.0.0.1']]]);
    expect(addresses(a.registry)).toEqual(['127.0.0.1:80']);
    expect(addresses(b2.registry)).toEqual(['127.0.0.1:80 unconfirmed']);

    // A's session stays as long as A lives, however many graces pass: A heartbeats it, one write per period.
    await pass(5 * GRACE);
    expect(await owners()).toEqual([['cp-a', ['127.0.0.1']]]);
    expect((await store.loadAll())[0]!.heartbeatAtMs).toBeGreaterThan(time.nowMs() - HEARTBEAT);
    expect(addresses(a.registry)).toEqual(['127.0.0.1:80']);
    expect(addresses(b2.registry)).toEqual(['127.0.0.1:80 unconfirmed']);
  });

  test('a killed replica: the survivor serves its sessions until their heartbeat lapses, then sweeps them, announced once; a proxy re-registering there supersedes at once', async () => {
    const { store, time, replica, pass, owners } = mesh();
    const a = await replica('cp-a');
    const b = await replica('cp-b');
    a.registry.openSession(API).replace([reg('127.0.0.1'), reg('127.0.0.3')]);
    await pass(GRACE + 1_000);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed', '127.0.0.3:80 unconfirmed']);

    // A is killed: no more heartbeats, no call closed, nothing removed.
    a.registry.stop();
    const lastBeat = (await store.loadAll())[0]!.heartbeatAtMs;
    // Its proxy reconnects to B and registers one of the two again: served, confirmed, at once.
    const back = b.registry.openSession(API);
    back.replace([reg('127.0.0.1')]);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80', '127.0.0.3:80 unconfirmed']);
    // B cannot tell a dead replica from a slow one until a whole grace has passed without a heartbeat.
    await pass(lastBeat + GRACE - time.nowMs());
    expect(await owners()).toEqual([
      ['cp-a', ['127.0.0.1', '127.0.0.3']],
      ['cp-b', ['127.0.0.1']],
    ]);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80', '127.0.0.3:80 unconfirmed']);
    const announced = b.announced();
    await pass(HEARTBEAT);
    expect(await owners()).toEqual([['cp-b', ['127.0.0.1']]]);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80']);
    expect(b.announced()).toBe(announced + 1);
  });

  test('a call that ends on its owner: its registrations go after the grace, on every replica', async () => {
    const { replica, pass, owners } = mesh();
    const a = await replica('cp-a');
    const b = await replica('cp-b');
    const s = a.registry.openSession(API);
    s.replace([reg('127.0.0.1')]);
    await pass(500);
    s.close();
    await pass(GRACE - 500);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed']);
    await pass(500);
    expect(await owners()).toEqual([]);
    expect(addresses(a.registry)).toEqual([]);
    expect(addresses(b.registry)).toEqual([]);
  });

  test('a session swept while its owner was cut off from the store is stored again at its next heartbeat', async () => {
    const { store, time, replica, pass, owners } = mesh();
    const a = await replica('cp-a');
    const b = await replica('cp-b');
    a.registry.openSession(API).replace([reg('127.0.0.1')]);
    await pass(500);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed']);
    // What another replica's sweep does once A's heartbeats have failed for a grace.
    expect(await store.removeStale(time.nowMs() + 1)).toBe(1);
    await b.registry.reloadStored();
    expect(addresses(b.registry)).toEqual([]);
    await pass(HEARTBEAT);
    expect(await owners()).toEqual([['cp-a', ['127.0.0.1']]]);
    expect(addresses(b.registry)).toEqual(['127.0.0.1:80 unconfirmed']);
  });

  test('one heartbeat write per period, for the sessions the replica holds (live or in their grace) and no others', async () => {
    const { store, replica, pass } = mesh();
    const beats: string[][] = [];
    const counting: RegistrationPersistence = {
      save: (s, atMs, owner) => store.save(s, atMs, owner),
      remove: (id) => store.remove(id),
      loadAll: () => store.loadAll(),
      heartbeat: (owner, ids, atMs) => {
        beats.push([owner, ...[...ids].sort()]);
        return store.heartbeat(owner, ids, atMs);
      },
      removeStale: (beforeMs) => store.removeStale(beforeMs),
    };
    const a = await replica('cp-a', counting);
    const b = await replica('cp-b');
    const live = a.registry.openSession(API);
    live.replace([reg('127.0.0.1')]);
    const ended = a.registry.openSession(API);
    ended.replace([reg('127.0.0.2')]);
    a.registry.openSession(API).replace([]);
    b.registry.openSession(API).replace([reg('127.0.0.9')]);
    await pass(500);
    ended.close();
    await pass(HEARTBEAT - 500);
    expect(beats).toEqual([['cp-a', ...[live.id, ended.id].sort()]]);
    // The ended call's grace is over: only the live one is refreshed; once that ends too, nothing is written.
    await pass(GRACE);
    expect(beats.at(-1)).toEqual(['cp-a', live.id]);
    live.close();
    await pass(GRACE);
    const count = beats.length;
    await pass(3 * HEARTBEAT);
    expect(beats.length).toBe(count);
  });

  test('stop() ends every timer of the registry', async () => {
    const { time, replica } = mesh();
    const a = await replica('cp-a');
    const s = a.registry.openSession(API);
    s.replace([reg('127.0.0.1')]);
    s.close();
    expect(time.pending).toBe(3);
    a.registry.stop();
    expect(time.pending).toBe(0);
  });
});
