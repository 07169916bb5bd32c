// ServiceDirectory: full and incremental updates, listeners only for services that changed, every kind of
// malformed update refused whole with the old endpoints kept, versions that never go back, and memory bounded
// under a flapping source.
import { describe, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg, EndpointMsg, ServiceEndpointsMsg } from '../../../../common/contract/discovery-v1.js';
import { isTesseraError } from '../../../../common/errors.js';
import { MAX_ENDPOINTS_PER_SERVICE, MAX_SERVICES, MAX_UPDATE_SERVICES, ServiceDirectory, type WatchedServices } from '../../../../proxy/src/routing/service-directory.js';

const ALL: WatchedServices = { all: true };
const watching = (...services: string[]): WatchedServices => ({ all: false, services: new Set(services) });

function ep(address: string, opts: Partial<EndpointMsg> = {}): EndpointMsg {
  return { address, spiffe_id: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 0, source: 'self', ...opts };
}

function update(version: number | string, full: boolean, services: Record<string, EndpointMsg[]> | ServiceEndpointsMsg[]): DiscoveryUpdateMsg {
  const list = Array.isArray(services) ? services : Object.entries(services).map(([service, endpoints]) => ({ service, endpoints }));
  return { version: String(version), full, services: list, generated_at_unix_ms: '0' };
}

const addresses = (d: ServiceDirectory, s: string) => d.get(s)?.map((e) => `${e.host}:${e.port}`);

function seeded(): { d: ServiceDirectory; heard: string[] } {
  const d = new ServiceDirectory();
  const heard: string[] = [];
  d.subscribeAll((s, list) => heard.push(`${s}=${list?.length ?? 'gone'}`));
  d.apply(update(5, true, { api: [ep('127.0.0.2:15006'), ep('127.0.0.3:15006')], web: [ep('127.0.0.4:15006')] }), watching('api', 'web'));
  heard.length = 0;
  return { d, heard };
}

describe('ServiceDirectory', () => {
  test('full then incremental: only the services carried change, listeners run only for real changes', () => {
    const { d, heard } = seeded();
    const apiCalls: number[] = [];
    d.subscribe('api', (list) => apiCalls.push(list.length));
    expect(d.version).toBe('5');
    expect(addresses(d, 'api')).toEqual(['127.0.0.2:15006', '127.0.0.3:15006']);
    const webBefore = d.get('web');

    d.apply(update(6, false, { api: [ep('127.0.0.3:15006'), ep('127.0.0.2:15006'), ep('127.0.0.5:15006')] }), watching('api', 'web'));
    expect(addresses(d, 'api')).toEqual(['127.0.0.2:15006', '127.0.0.3:15006', '127.0.0.5:15006']);
    expect(d.get('web')).toBe(webBefore);
    expect(apiCalls).toEqual([3]);
    expect(heard).toEqual(['api=3']);

    // The same set in another order, and an unchanged service: nothing to tell anyone.
    d.apply(update(7, false, { api: [ep('127.0.0.5:15006'), ep('127.0.0.2:15006'), ep('127.0.0.3:15006')], web: [ep('127.0.0.4:15006')] }), watching('api', 'web'));
    expect(apiCalls).toEqual([3]);
    expect(heard).toEqual(['api=3']);
    expect(d.version).toBe('7');

    // A changed attribute (ready) is a change.
    d.apply(update(8, false, { web: [ep('127.0.0.4:15006', { ready: false })] }), watching('api', 'web'));
    expect(heard).toEqual(['api=3', 'web=1']);
    expect(d.get('web')![0]!.ready).toBe(false);
  });

  test('a full update is the whole state: a watched service it leaves out has no endpoints; unwatched ones are ignored', () => {
    const { d, heard } = seeded();
    d.apply(update(6, true, { api: [ep('127.0.0.2:15006')], other: [ep('127.0.0.9:1')] }), watching('api', 'web'));
    expect(addresses(d, 'api')).toEqual(['127.0.0.2:15006']);
    expect(d.get('web')).toEqual([]);
    expect(d.get('other')).toBeUndefined();
    expect(heard.sort()).toEqual(['api=1', 'web=0']);
    expect(d.get('never')).toBeUndefined();
  });

  test('watching all: a service left with no endpoints is forgotten (get → undefined, subscribeAll hears "gone")', () => {
    const d = new ServiceDirectory();
    const heard: string[] = [];
    d.subscribeAll((s, list) => heard.push(`${s}=${list?.length ?? 'gone'}`));
    d.apply(update(1, true, { a: [ep('10.0.0.1:1')], b: [ep('10.0.0.2:1')] }), ALL);
    d.apply(update(2, false, { a: [] }), ALL);
    expect(d.get('a')).toBeUndefined();
    expect(d.names()).toEqual(['b']);
    d.apply(update(3, true, {}), ALL);
    expect(d.names()).toEqual([]);
    expect(heard).toEqual(['a=1', 'b=1', 'a=gone', 'b=gone']);
  });

  const good = () => [ep('127.0.0.7:15006')];
  const malformed: [string, () => DiscoveryUpdateMsg][] = [
    ['an address without a port', () => update(9, false, { api: good(), web: [ep('127.0.0.9')] })],
    ['port 0', () => update(9, false, { api: good(), web: [ep('127.0.0.9:0')] })],
    ['port 65536', () => update(9, false, { api: good(), web: [ep('127.0.0.9:65536')] })],
    ['a SPIFFE ID that is not one', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { spiffe_id: 'https://example.org/x' })] })],
    ['a trust-domain ID (no workload path)', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { spiffe_id: 'spiffe://example.org' })] })],
    ['an empty SPIFFE ID', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { spiffe_id: '' })] })],
    ['an unknown protocol', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { protocol: 'ftp' })] })],
    ['weight 1001', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { weight: 1001 })] })],
    ['an unknown source', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { source: 'dns' })] })],
    ['a 64-character zone', () => update(9, false, { api: good(), web: [ep('127.0.0.9:1', { zone: 'z'.repeat(64) })] })],
    ['a null endpoint', () => update(9, false, { api: good(), web: [null as unknown as EndpointMsg] })],
    ['a bad service name', () => update(9, false, { api: good(), 'Web_Service': [ep('127.0.0.9:1')] })],
    ['an empty service name', () => update(9, false, [{ service: 'api', endpoints: good() }, { service: '', endpoints: [] }])],
    ['a service twice', () => update(9, false, [{ service: 'api', endpoints: good() }, { service: 'api', endpoints: [] }])],
    ['an address twice in a service', () => update(9, false, { api: [ep('127.0.0.7:15006'), ep('127.0.0.7:15006', { ready: false })] })],
    ['too many endpoints in a service', () => update(9, false, { api: good(), web: Array.from({ length: MAX_ENDPOINTS_PER_SERVICE + 1 }, (_, i) => ep(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:1`)) })],
    ['more services than any update may carry', () => update(9, true, Array.from({ length: MAX_UPDATE_SERVICES + 1 }, (_, i) => ({ service: `s${i}`, endpoints: [] })))],
    ['endpoints not a list', () => update(9, false, [{ service: 'api', endpoints: good() }, { service: 'web', endpoints: 'x' as unknown as EndpointMsg[] }])],
    ['services not a list', () => ({ ...update(9, false, {}), services: null as unknown as ServiceEndpointsMsg[] })],
    ['a version that is not a number', () => update('9a', false, { api: good() })],
    ['an empty version', () => update('', false, { api: good() })],
    ['a negative version', () => update('-9', false, { api: good() })],
    ['an older version (full)', () => update(4, true, { api: good() })],
    ['an older version (incremental)', () => update(4, false, { api: good() })],
  ];

  test.each(malformed)('refuses the whole update with %s; the old endpoints stay and no listener runs', (_what, make) => {
    const { d, heard } = seeded();
    const before = { api: d.get('api'), web: d.get('web'), names: d.names(), version: d.version };
    let err: unknown;
    try {
      d.apply(make(), watching('api', 'web'));
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_DISCOVERY_BAD_UPDATE')).toBe(true);
    expect(d.get('api')).toBe(before.api);
    expect(d.get('web')).toBe(before.web);
    expect(d.names()).toEqual(before.names);
    expect(d.version).toBe(before.version);
    expect(d.refused).toBe(1);
    expect(heard).toEqual([]);
  });

  test('the same version again is accepted (the same state: a reconnect, a merged flush)', () => {
    const { d, heard } = seeded();
    expect(d.apply(update(5, false, {}), watching('api', 'web')).changed).toEqual([]);
    expect(d.apply(update(5, false, { web: [ep('127.0.0.4:15006')] }), watching('api', 'web')).changed).toEqual([]);
    expect(heard).toEqual([]);
    expect(d.refused).toBe(0);
  });

  test('the first update of a stream must be full (requireFull)', () => {
    const { d } = seeded();
    expect(() => d.apply(update(9, false, { api: [] }), watching('api', 'web'), { requireFull: true })).toThrow(/not full/);
    expect(d.get('api')).toHaveLength(2);
    // A full update with the applied version is a reconnect to the same state: accepted, nothing changes.
    expect(d.apply(update(5, true, { api: [ep('127.0.0.2:15006'), ep('127.0.0.3:15006')], web: [ep('127.0.0.4:15006')] }), watching('api', 'web'), { requireFull: true }).changed).toEqual([]);
  });

  test('a throwing listener neither undoes the update nor stops the others', () => {
    const errors: string[] = [];
    const d = new ServiceDirectory({ onListenerError: (e, s) => errors.push(`${s}: ${(e as Error).message}`) });
    const heard: number[] = [];
    d.subscribe('api', () => {
      throw new Error('boom');
    });
    d.subscribe('api', (l) => heard.push(l.length));
    d.apply(update(1, true, { api: [ep('127.0.0.2:1')] }), watching('api'));
    expect(heard).toEqual([1]);
    expect(errors).toEqual(['api: boom']);
    expect(d.get('api')).toHaveLength(1);
  });

  test('unsubscribe stops the calls and leaves no listener entry behind', () => {
    const d = new ServiceDirectory();
    const heard: number[] = [];
    const offs = Array.from({ length: 1000 }, (_, i) => d.subscribe(`s${i}`, (l) => heard.push(l.length)));
    for (const off of offs) off();
    const offAll = d.subscribeAll(() => heard.push(-1));
    offAll();
    d.apply(update(1, true, { s1: [ep('127.0.0.2:1')] }), ALL);
    expect(heard).toEqual([]);
  });

  test('a flapping source (new services and endpoints on every update) keeps memory bounded', () => {
    const d = new ServiceDirectory();
    let calls = 0;
    d.subscribeAll(() => calls++);
    // 20,000 updates, each naming a new service and dropping the previous one, plus an endpoint that comes and goes.
    for (let v = 1; v <= 20_000; v++) {
      const services: Record<string, EndpointMsg[]> = { [`flap-${v}`]: [ep(`10.0.${v & 255}.1:${1 + (v % 60_000)}`)], steady: v % 2 ? [ep('10.1.0.1:1')] : [ep('10.1.0.1:1'), ep('10.1.0.2:1')] };
      if (v > 1) services[`flap-${v - 1}`] = [];
      d.apply(update(v, false, services), ALL);
      expect(d.names().length).toBeLessThanOrEqual(2);
    }
    expect(d.names().sort()).toEqual(['flap-20000', 'steady']);
    expect(d.refused).toBe(0);
    expect(calls).toBeGreaterThan(20_000);

    // And services that never go away: capped at MAX_SERVICES, the one past it left out (counted), nothing refused.
    const big = new ServiceDirectory();
    big.apply(update(1, true, Array.from({ length: MAX_SERVICES }, (_, i) => ({ service: `s${i}`, endpoints: [ep('10.0.0.1:1')] }))), ALL);
    expect(big.apply(update(2, false, { extra: [ep('10.0.0.1:1')] }), ALL)).toMatchObject({ changed: [], leftOut: 1 });
    expect(big.names()).toHaveLength(MAX_SERVICES);
    expect(big.get('extra')).toBeUndefined();
    expect(big.refused).toBe(0);
  });

  describe('a view of all services over MAX_SERVICES', () => {
    const flood = (version: number, n: number, extra: Record<string, EndpointMsg[]> = {}) => {
      const services: Record<string, EndpointMsg[]> = {};
      for (let i = 0; i < n; i++) services[`f${String(i).padStart(5, '0')}`] = [ep('10.0.0.1:1')];
      return update(version, true, { ...services, ...extra });
    };

    test('full: the keep names first (even sorting last), then by name; the rest counted, never refused', () => {
      const d = new ServiceDirectory();
      const r = d.apply(flood(1, MAX_SERVICES + 10, { 'zz-api': [ep('10.0.0.2:1')], 'zz-solo': [ep('10.0.0.3:1')] }), { all: true, keep: new Set(['zz-api', 'zz-solo', 'zz-absent']) });
      expect(r.leftOut).toBe(12);
      expect(d.leftOut).toBe(12);
      expect(d.names()).toHaveLength(MAX_SERVICES);
      expect(d.get('zz-api')).toHaveLength(1);
      expect(d.get('zz-solo')).toHaveLength(1);
      expect(d.get('f00000')).toHaveLength(1);
      expect(d.get(`f${String(MAX_SERVICES + 9).padStart(5, '0')}`)).toBeUndefined();
      expect(d.refused).toBe(0);
    });

    test('those already held stay over newcomers (no churn); a keep name comes in even when full', () => {
      const d = new ServiceDirectory();
      const keep = new Set(['zz-api']);
      d.apply(flood(1, MAX_SERVICES), { all: true, keep });
      expect(d.leftOut).toBe(0);
      // A newcomer sorting first does not push out a held one.
      expect(d.apply(update(2, false, { a0: [ep('10.0.0.4:1')] }), { all: true, keep }).leftOut).toBe(1);
      expect(d.get('a0')).toBeUndefined();
      // The listener's own service does come in, in place of one of the others.
      d.apply(update(3, false, { 'zz-api': [ep('10.0.0.2:1')] }), { all: true, keep });
      expect(d.get('zz-api')).toHaveLength(1);
      expect(d.names()).toHaveLength(MAX_SERVICES);
      expect(d.leftOut).toBe(2);
      // Room again: a full update brings the left-out ones back, the count goes to 0.
      expect(d.apply(flood(4, 10, { a0: [ep('10.0.0.4:1')], 'zz-api': [ep('10.0.0.2:1')] }), { all: true, keep }).leftOut).toBe(0);
      expect(d.get('a0')).toHaveLength(1);
      expect(d.names()).toHaveLength(12);
    });

    test('a left-out service that goes away is no longer counted', () => {
      const d = new ServiceDirectory();
      d.apply(flood(1, MAX_SERVICES + 1), ALL);
      expect(d.leftOut).toBe(1);
      d.apply(update(2, false, { [`f${String(MAX_SERVICES).padStart(5, '0')}`]: [] }), ALL);
      expect(d.leftOut).toBe(0);
    });
  });
});
