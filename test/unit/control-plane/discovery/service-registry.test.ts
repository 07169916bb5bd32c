// The service registry's core: merging self-registrations with source views, versions that only grow, per-service
// change detection (told once the version is taken, in order), the grace after a call ends (fake time), take-over
// by the same caller, persistence (writes queued in order) and following what other replicas stored.

import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { MIN_HEARTBEAT_MS, type RegistrationPersistence, ServiceRegistry } from '../../../../control-plane/src/discovery/service-registry.js';
import { openDatabase } from '../../../../control-plane/src/store/sqlite/sqlite-database.js';
import { SqliteRegistrationStore } from '../../../../control-plane/src/store/sqlite/sqlite-registration-store.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';
import { until } from '../../../helpers/until.js';

const A = 'spiffe://example.org/ns/default/sa/api';
const B = 'spiffe://example.org/ns/default/sa/other';
const ep = (host: string, port: number, spiffeId = A, extra: Partial<ServiceEndpoint> = {}): ServiceEndpoint => ({ host, port, spiffeId, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self', ...extra });

async function setup(opts: { graceMs?: number; persistence?: RegistrationPersistence; onPersisted?: () => void; time?: FakeTime; owner?: string } = {}) {
  const time = opts.time ?? new FakeTime();
  let counter = 0;
  const registry = await ServiceRegistry.open({ clock: time, timers: time, nextVersion: async () => ++counter, graceMs: opts.graceMs ?? 10_000, owner: opts.owner ?? 'cp-test', ...(opts.persistence ? { persistence: opts.persistence } : {}), ...(opts.onPersisted ? { onPersisted: opts.onPersisted } : {}) });
  const changes: { changed: string[]; version: number }[] = [];
  registry.subscribe((changed, version) => changes.push({ changed: [...changed].sort(), version }));
  return { time, registry, changes };
}

const addresses = (r: ServiceRegistry, s: string) => r.endpoints(s).map((e) => `${e.address} ${e.source}${e.confirmed ? '' : ' unconfirmed'}`);

describe('ServiceRegistry', () => {
  test('merges self-registrations and source views per service, sorted by address', async () => {
    const { registry } = await setup();
    const s = registry.openSession(A);
    s.replace([{ service: 'api.default', endpoint: ep('127.0.0.3', 15006) }]);
    registry.setSourceView('static', new Map([['api.default', [ep('127.0.0.2', 15006, B, { source: 'static' })]], ['db', [ep('10.0.0.1', 5432, B)]]]));
    expect(registry.services()).toEqual(['api.default', 'db']);
    expect(addresses(registry, 'api.default')).toEqual(['127.0.0.2:15006 static', '127.0.0.3:15006 self']);
    // A source's endpoints carry its name whatever it put in them.
    expect(registry.endpoints('db')[0]!.source).toBe('static');
    expect(registry.endpoints('nothing')).toEqual([]);
  });

  test('the same address from two places is served once: live self-registration, then sources, then remembered', async () => {
    const { registry, time } = await setup();
    registry.setSourceView('static', new Map([['api', [ep('127.0.0.2', 80, A, { source: 'static' })]]]));
    registry.setSourceView('kubernetes', new Map([['api', [ep('127.0.0.2', 80, A, { source: 'kubernetes', zone: 'z1' })]]]));
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
    s.close();
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
    time.advance(10_000);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
  });

  test('a self-registration cannot put its ID on an address a source gives another ID: the source wins', async () => {
    const { registry } = await setup();
    registry.setSourceView('static', new Map([['api', [ep('127.0.0.2', 80, A, { source: 'static' })]]]));
    // B (allowed to serve api here: no rule) registers A's address; callers would then expect B there and refuse A.
    const s = registry.openSession(B);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80, B) }, { service: 'api', endpoint: ep('127.0.0.9', 80, B) }]);
    expect(registry.endpoints('api').map((e) => `${e.address} ${e.spiffeId} ${e.source}`)).toEqual([`127.0.0.2:80 ${A} static`, `127.0.0.9:80 ${B} self`]);
    // In whichever order the two arrive.
    registry.setSourceView('static', new Map());
    expect(registry.endpoints('api').map((e) => `${e.address} ${e.spiffeId}`)).toEqual([`127.0.0.2:80 ${B}`, `127.0.0.9:80 ${B}`]);
    registry.setSourceView('kubernetes', new Map([['api', [ep('127.0.0.2', 80, A, { source: 'kubernetes' })]]]));
    expect(registry.endpoints('api').map((e) => `${e.address} ${e.spiffeId} ${e.source}`)).toEqual([`127.0.0.2:80 ${A} kubernetes`, `127.0.0.9:80 ${B} self`]);
  });

  test('a registration the service rule does not allow is not served, whoever stored it', async () => {
    const time = new FakeTime();
    let counter = 0;
    const mayServe = (service: string, id: string) => service !== 'api' || id === A;
    const registry = await ServiceRegistry.open({ clock: time, timers: time, nextVersion: async () => ++counter, graceMs: 10_000, owner: 'cp-test', mayServe });
    const a = registry.openSession(A);
    a.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    const b = registry.openSession(B);
    b.replace([{ service: 'api', endpoint: ep('127.0.0.3', 80, B) }, { service: 'other', endpoint: ep('127.0.0.3', 81, B) }]);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
    expect(addresses(registry, 'other')).toEqual(['127.0.0.3:81 self']);
  });

  test('each change is one new, higher version naming only the services that changed', async () => {
    const { registry, changes } = await setup();
    const v0 = registry.version;
    const s = registry.openSession(A);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2) }]);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2, A, { ready: false }) }]);
    // The same set again changes nothing: no version, no update.
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2, A, { ready: false }) }]);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }]);
    // The endpoints change at once; subscribers hear of it once the new version has come from the store.
    expect(registry.services()).toEqual(['a']);
    expect(changes).toEqual([]);
    await registry.settled();
    expect(changes.map((c) => c.changed)).toEqual([['a', 'b'], ['b'], ['b']]);
    const versions = changes.map((c) => c.version);
    expect(versions[0]).toBeGreaterThan(v0);
    expect([...versions].sort((x, y) => x - y)).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
    expect(registry.version).toBe(versions.at(-1));
    expect(registry.services()).toEqual(['a']);
  });

  test('a closed call keeps its registrations for the grace, then they go', async () => {
    const { registry, time, changes } = await setup({ graceMs: 10_000 });
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    s.close();
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self unconfirmed']);
    time.advance(9_999);
    expect(registry.endpoints('api')).toHaveLength(1);
    time.advance(1);
    expect(registry.endpoints('api')).toEqual([]);
    await registry.settled();
    expect(changes.at(-1)!.changed).toEqual(['api']);
    // A late replace on the closed session changes nothing.
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    expect(registry.endpoints('api')).toEqual([]);
  });

  test('the same caller registering the same endpoint again within the grace keeps it, with no gap', async () => {
    const { registry, time, changes } = await setup();
    const s1 = registry.openSession(A);
    s1.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.2', 81) }]);
    s1.close();
    const s2 = registry.openSession(A);
    s2.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    await registry.settled();
    const before = changes.length;
    time.advance(10_000);
    // The endpoint registered again stays; the one not registered again went at the end of the grace.
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
    await registry.settled();
    expect(changes.length).toBe(before + 1);
    time.advance(60_000);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
  });

  test('another caller at the same address does not take over a remembered registration, it only outranks it', async () => {
    const { registry, time } = await setup();
    const s1 = registry.openSession(A);
    s1.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    s1.close();
    const s2 = registry.openSession(B);
    s2.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80, B) }]);
    expect(registry.endpoints('api').map((e) => e.spiffeId)).toEqual([B]);
    s2.close();
    // B's call ended after A's: each goes at the end of its own grace.
    expect(registry.endpoints('api').map((e) => e.spiffeId)).toEqual([A]);
    time.advance(10_000);
    expect(registry.endpoints('api')).toEqual([]);
  });

  test('two live replicas of one SPIFFE ID are both served', async () => {
    const { registry } = await setup();
    registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.3', 80) }]);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.3:80 self']);
  });

  test('heldBy counts what an ID holds in its other sessions, live or in their grace', async () => {
    const { registry, time } = await setup();
    const s1 = registry.openSession(A);
    s1.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.2', 81) }]);
    const s2 = registry.openSession(A);
    s2.replace([{ service: 'api', endpoint: ep('127.0.0.3', 80) }]);
    registry.openSession(B).replace([{ service: 'api', endpoint: ep('127.0.0.4', 80, B) }]);
    expect(registry.heldBy(A, s2.id)).toBe(2);
    s1.close();
    expect(registry.heldBy(A, s2.id)).toBe(2);
    time.advance(10_000);
    expect(registry.heldBy(A, s2.id)).toBe(0);
  });

  test('a call that registered nothing leaves nothing behind, and stop() ends the grace timers', async () => {
    const { registry, time } = await setup();
    registry.openSession(A).close();
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    s.close();
    expect(time.pending).toBe(1);
    registry.stop();
    expect(time.pending).toBe(0);
  });

  test('versions are taken one at a time: a slow store delays the news, never reorders it', async () => {
    const time = new FakeTime();
    const asked: ((v: number) => void)[] = [];
    let first = true;
    const registry = await ServiceRegistry.open({
      clock: time,
      timers: time,
      graceMs: 10_000,
      owner: 'cp-test',
      nextVersion: () => {
        if (first) {
          first = false;
          return Promise.resolve(1);
        }
        return new Promise<number>((resolve) => asked.push(resolve));
      },
    });
    const heard: { changed: string[]; version: number }[] = [];
    registry.subscribe((changed, version) => heard.push({ changed: [...changed].sort(), version }));
    const s = registry.openSession(A);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }]);
    s.replace([{ service: 'b', endpoint: ep('127.0.0.2', 2) }]);
    await Promise.resolve();
    // The second change waits for the first's version before asking for its own.
    expect(asked).toHaveLength(1);
    asked[0]!(7);
    await until('the second version asked for', () => asked.length === 2, 2_000, 1);
    expect(heard).toEqual([{ changed: ['a'], version: 7 }]);
    asked[1]!(8);
    await registry.settled();
    expect(heard).toEqual([
      { changed: ['a'], version: 7 },
      { changed: ['a', 'b'], version: 8 },
    ]);
    expect(registry.version).toBe(8);
  });

  test('a version the store cannot give: the change still goes out, under the current version, and is reported', async () => {
    const time = new FakeTime();
    const errors: unknown[] = [];
    let calls = 0;
    const registry = await ServiceRegistry.open({
      clock: time,
      timers: time,
      graceMs: 10_000,
      owner: 'cp-test',
      nextVersion: async () => {
        if (calls++ > 0) throw new Error('database down');
        return 5;
      },
      onVersionError: (e) => errors.push(e),
    });
    const heard: number[] = [];
    registry.subscribe((_c, v) => heard.push(v));
    registry.openSession(A).replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }]);
    await registry.settled();
    expect(heard).toEqual([5]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['database down']);
  });

  describe('persistence', () => {
    const tmp = tempDirPerTest();

    test('a restarted registry serves the previous self-registrations unconfirmed until the grace after start', async () => {
      const db = openDatabase(join(tmp.dir, 'r.db'));
      const store = new SqliteRegistrationStore(db);
      let persisted = 0;
      const first = await setup({ persistence: store, onPersisted: () => persisted++ });
      const s = first.registry.openSession(A);
      s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.3', 80) }]);
      first.registry.stop();
      // Closed after stop (shutdown order): what was registered stays stored.
      s.close();
      await first.registry.settled();
      expect(persisted).toBe(1);
      expect(await store.loadAll()).toHaveLength(1);

      // The restart takes a second; the new process has a new name and adopts nothing.
      first.time.advance(1_000);
      const second = await setup({ persistence: store, time: first.time, owner: 'cp-test-2' });
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self unconfirmed', '127.0.0.3:80 self unconfirmed']);
      second.registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.3:80 self unconfirmed']);
      second.time.advance(9_999);
      await second.registry.settled();
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.3:80 self unconfirmed']);
      // A grace after start, nobody heartbeats the previous process's session: it is swept.
      second.time.advance(1);
      await second.registry.settled();
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self']);
      // Only the live session is left in the store, owned by the new process.
      expect((await store.loadAll()).map((x) => [x.owner, x.registrations.length])).toEqual([['cp-test-2', 1]]);
      second.registry.stop();
      db.close();
    });

    test("another replica's stored sessions are served as remembered, followed, and never written here", async () => {
      const db = openDatabase(join(tmp.dir, 'r.db'));
      const store = new SqliteRegistrationStore(db);
      // Two control-plane replicas on one store, their clocks agreeing; workload A has a proxy connected to each.
      const time = new FakeTime();
      const here = await setup({ persistence: store, time, owner: 'cp-here' });
      const other = await setup({ persistence: store, time, owner: 'cp-other' });
      const mine = here.registry.openSession(A);
      mine.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
      const theirs = other.registry.openSession(A);
      theirs.replace([{ service: 'api', endpoint: ep('127.0.0.9', 80) }]);
      await Promise.all([here.registry.settled(), other.registry.settled()]);
      await here.registry.reloadStored();
      expect(addresses(here.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.9:80 self unconfirmed']);
      await here.registry.settled();
      expect(here.changes.at(-1)!.changed).toEqual(['api']);
      // The same ID registering that address here outranks the other replica's copy but does not trim its row,
      // and no grace here expires it while the other replica heartbeats it.
      mine.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.9', 80) }]);
      for (let i = 0; i < 120; i++) {
        time.advance(500);
        await Promise.all([here.registry.settled(), other.registry.settled()]);
      }
      expect((await store.loadAll()).find((x) => x.id === theirs.id)?.registrations).toHaveLength(1);
      expect(addresses(here.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.9:80 self']);
      // The other replica's session changes, then empties: this one follows.
      theirs.replace([{ service: 'db', endpoint: ep('127.0.0.9', 5432) }]);
      await other.registry.settled();
      await here.registry.reloadStored();
      expect(addresses(here.registry, 'db')).toEqual(['127.0.0.9:5432 self unconfirmed']);
      theirs.replace([]);
      await other.registry.settled();
      await here.registry.reloadStored();
      expect(here.registry.endpoints('db')).toEqual([]);
      // Its own session, read back from the store, is never taken for another replica's.
      expect(addresses(here.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.9:80 self']);
      here.registry.stop();
      other.registry.stop();
      db.close();
    });

    test('a failing store is reported and the registry goes on in memory', async () => {
      const errors: unknown[] = [];
      const time = new FakeTime();
      const broken: RegistrationPersistence = {
        save: async () => {
          throw new Error('disk full');
        },
        remove: async () => {},
        loadAll: async () => {
          throw new Error('unreadable');
        },
        heartbeat: async () => {
          throw new Error('still down');
        },
        removeStale: async () => 0,
      };
      const registry = await ServiceRegistry.open({ clock: time, timers: time, nextVersion: async () => 1, graceMs: 1, owner: 'cp-test', persistence: broken, onPersistError: (e) => errors.push(e) });
      registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
      expect(registry.endpoints('api')).toHaveLength(1);
      await registry.settled();
      expect(errors.map((e) => (e as Error).message)).toEqual(['unreadable', 'disk full']);
      // A heartbeat that fails is reported too, and the sweep after it is skipped (it could remove this one's own).
      time.advance(MIN_HEARTBEAT_MS);
      await registry.settled();
      expect(errors.map((e) => (e as Error).message)).toEqual(['unreadable', 'disk full', 'still down']);
      expect(registry.endpoints('api')).toHaveLength(1);
      registry.stop();
    });
  });
});
