// The service registry's core: merging self-registrations with source views, versions that only grow, per-service
// change detection, the grace after a call ends (fake time), take-over by the same caller, and persistence.
import { describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { type RegistrationPersistence, ServiceRegistry, type StoredSession } from '../../../../control-plane/src/discovery/service-registry.js';
import { RegistrationStore } from '../../../../control-plane/src/store/registration-store.js';
import { openDatabase } from '../../../../control-plane/src/store/database.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';
import { join } from 'node:path';

const A = 'spiffe://example.org/ns/default/sa/api';
const B = 'spiffe://example.org/ns/default/sa/other';
const ep = (host: string, port: number, spiffeId = A, extra: Partial<ServiceEndpoint> = {}): ServiceEndpoint => ({ host, port, spiffeId, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self', ...extra });

function setup(opts: { graceMs?: number; persistence?: RegistrationPersistence } = {}) {
  const time = new FakeTime();
  let counter = 0;
  const registry = new ServiceRegistry({ clock: time, timers: time, nextVersion: () => ++counter, graceMs: opts.graceMs ?? 10_000, ...(opts.persistence ? { persistence: opts.persistence } : {}) });
  const changes: { changed: string[]; version: number }[] = [];
  registry.subscribe((changed, version) => changes.push({ changed: [...changed].sort(), version }));
  return { time, registry, changes };
}

const addresses = (r: ServiceRegistry, s: string) => r.endpoints(s).map((e) => `${e.address} ${e.source}${e.confirmed ? '' : ' unconfirmed'}`);

describe('ServiceRegistry', () => {
  test('merges self-registrations and source views per service, sorted by address', () => {
    const { registry } = setup();
    const s = registry.openSession(A);
    s.replace([{ service: 'api.default', endpoint: ep('127.0.0.3', 15006) }]);
    registry.setSourceView('static', new Map([['api.default', [ep('127.0.0.2', 15006, B, { source: 'static' })]], ['db', [ep('10.0.0.1', 5432, B)]]]));
    expect(registry.services()).toEqual(['api.default', 'db']);
    expect(addresses(registry, 'api.default')).toEqual(['127.0.0.2:15006 static', '127.0.0.3:15006 self']);
    // A source's endpoints carry its name whatever it put in them.
    expect(registry.endpoints('db')[0]!.source).toBe('static');
    expect(registry.endpoints('nothing')).toEqual([]);
  });

  test('the same address from two places is served once: live self-registration, then sources, then remembered', () => {
    const { registry, time } = setup();
    registry.setSourceView('static', new Map([['api', [ep('127.0.0.2', 80, B, { source: 'static' })]]]));
    registry.setSourceView('kubernetes', new Map([['api', [ep('127.0.0.2', 80, B, { source: 'kubernetes' })]]]));
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
    s.close();
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
    time.advance(10_000);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 kubernetes']);
  });

  test('each change is one new, higher version naming only the services that changed', () => {
    const { registry, changes } = setup();
    const v0 = registry.version;
    const s = registry.openSession(A);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2) }]);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2, A, { ready: false }) }]);
    // The same set again changes nothing: no version, no update.
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }, { service: 'b', endpoint: ep('127.0.0.2', 2, A, { ready: false }) }]);
    s.replace([{ service: 'a', endpoint: ep('127.0.0.2', 1) }]);
    expect(changes.map((c) => c.changed)).toEqual([['a', 'b'], ['b'], ['b']]);
    const versions = changes.map((c) => c.version);
    expect(versions[0]).toBeGreaterThan(v0);
    expect([...versions].sort((x, y) => x - y)).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
    expect(registry.version).toBe(versions.at(-1));
    expect(registry.services()).toEqual(['a']);
  });

  test('a closed call keeps its registrations for the grace, then they go', () => {
    const { registry, time, changes } = setup({ graceMs: 10_000 });
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    s.close();
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self unconfirmed']);
    time.advance(9_999);
    expect(registry.endpoints('api')).toHaveLength(1);
    time.advance(1);
    expect(registry.endpoints('api')).toEqual([]);
    expect(changes.at(-1)!.changed).toEqual(['api']);
    // A late replace on the closed session changes nothing.
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    expect(registry.endpoints('api')).toEqual([]);
  });

  test('the same caller registering the same endpoint again within the grace keeps it, with no gap', () => {
    const { registry, time, changes } = setup();
    const s1 = registry.openSession(A);
    s1.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.2', 81) }]);
    s1.close();
    const s2 = registry.openSession(A);
    s2.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    const before = changes.length;
    time.advance(10_000);
    // The endpoint registered again stays; the one not registered again went at the end of the grace.
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
    expect(changes.length).toBe(before + 1);
    time.advance(60_000);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self']);
  });

  test('another caller at the same address does not take over a remembered registration, it only outranks it', () => {
    const { registry, time } = setup();
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

  test('two live replicas of one SPIFFE ID are both served', () => {
    const { registry } = setup();
    registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.3', 80) }]);
    expect(addresses(registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.3:80 self']);
  });

  test('heldBy counts what an ID holds in its other sessions, live or in their grace', () => {
    const { registry, time } = setup();
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

  test('a call that registered nothing leaves nothing behind, and stop() ends the grace timers', () => {
    const { registry, time } = setup();
    registry.openSession(A).close();
    const s = registry.openSession(A);
    s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
    s.close();
    expect(time.pending).toBe(1);
    registry.stop();
    expect(time.pending).toBe(0);
  });

  describe('persistence', () => {
    const tmp = tempDirPerTest();

    test('a restarted registry serves the previous self-registrations unconfirmed until the grace after start', () => {
      const db = openDatabase(join(tmp.dir, 'r.db'));
      const store = new RegistrationStore(db);
      const first = setup({ persistence: store });
      const s = first.registry.openSession(A);
      s.replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }, { service: 'api', endpoint: ep('127.0.0.3', 80) }]);
      first.registry.stop();
      // Closed after stop (shutdown order): what was registered stays stored.
      s.close();
      expect(store.loadAll()).toHaveLength(1);

      const second = setup({ persistence: store });
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self unconfirmed', '127.0.0.3:80 self unconfirmed']);
      second.registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self', '127.0.0.3:80 self unconfirmed']);
      second.time.advance(10_000);
      expect(addresses(second.registry, 'api')).toEqual(['127.0.0.2:80 self']);
      // Only the live session is left in the store.
      expect(store.loadAll().map((x: StoredSession) => x.registrations.length)).toEqual([1]);
      db.close();
    });

    test('a failing store is reported and the registry goes on in memory', () => {
      const errors: unknown[] = [];
      const time = new FakeTime();
      const broken: RegistrationPersistence = {
        save: () => {
          throw new Error('disk full');
        },
        remove: () => {},
        loadAll: () => [],
      };
      const registry = new ServiceRegistry({ clock: time, timers: time, nextVersion: () => 1, graceMs: 1, persistence: broken, onPersistError: (e) => errors.push(e) });
      registry.openSession(A).replace([{ service: 'api', endpoint: ep('127.0.0.2', 80) }]);
      expect(registry.endpoints('api')).toHaveLength(1);
      expect(errors).toHaveLength(1);
    });
  });
});
