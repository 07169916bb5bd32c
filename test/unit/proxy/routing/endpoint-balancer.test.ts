// The per-service balancer, with a fake clock and a seeded random: evenness and latency awareness in a simulated
// load loop, least-loaded choice, slow start, outlier ejection and panic mode, endpoint updates and draining.
import { describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING, type RoutingSettings } from '../../../../proxy/src/config/routing-config.js';
import { EndpointBalancer } from '../../../../proxy/src/routing/endpoint-balancer.js';
import type { Lease } from '../../../../proxy/src/routing/lease.js';
import { type LoadRun, runLoad } from '../../../helpers/balancer-load.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const ID = 'spiffe://example.test/ns/default/sa/api';

function ep(n: number, over: Partial<ServiceEndpoint> = {}): ServiceEndpoint {
  return { host: `127.0.0.${n}`, port: 8080, spiffeId: ID, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self', ...over };
}

/** A balancer whose resources are labels ("127.0.0.1:8080#1"), recording what it created, retired and reported. */
function setup(settings: Partial<RoutingSettings> = {}, seed = 1) {
  const time = new FakeTime(0);
  const created: string[] = [];
  const retired: string[] = [];
  const ejected: [string, string][] = [];
  const b = new EndpointBalancer<string>({
    service: 'api.default',
    settings: { ...DEFAULT_ROUTING, ...settings },
    nowMs: () => time.nowMs(),
    random: seededRandom(seed),
    create: (e) => {
      const r = `${e.host}:${e.port}#${created.length + 1}`;
      created.push(r);
      return r;
    },
    retire: (r) => retired.push(r),
    onEjected: (address, reason) => ejected.push([address, reason]),
  });
  return { time, b, created, retired, ejected };
}

function share(run: LoadRun, address: string): number {
  return (run.counts.get(address) ?? 0) / run.picks.length;
}

describe('EndpointBalancer: load', () => {
  test.each([1, 2, 3])('3 equal endpoints, 3,000 requests: each gets 25-42 % (seed %i)', (seed) => {
    const { b, time } = setup({}, seed);
    b.update([ep(1), ep(2), ep(3)]);
    const run = runLoad(b, time, 3000, 5, () => 10, seed);
    for (const n of [1, 2, 3]) {
      expect(share(run, `127.0.0.${n}:8080`)).toBeGreaterThanOrEqual(0.25);
      expect(share(run, `127.0.0.${n}:8080`)).toBeLessThanOrEqual(0.42);
    }
  });

  test.each([1, 2, 3])('an endpoint 50 ms slower gets under 15 % (seed %i)', (seed) => {
    const { b, time } = setup({}, seed);
    b.update([ep(1), ep(2), ep(3)]);
    const run = runLoad(b, time, 3000, 5, (a) => (a.startsWith('127.0.0.3:') ? 60 : 10), seed);
    expect(share(run, '127.0.0.3:8080')).toBeLessThan(0.15);
    expect(share(run, '127.0.0.1:8080')).toBeGreaterThan(0.35);
  });

  test('weights: an endpoint of weight 300 beside two of 100 is a candidate more often, and gets more', () => {
    const { b, time } = setup({}, 4);
    b.update([ep(1, { weight: 300 }), ep(2), ep(3)]);
    // Unequal weights: the two candidates are drawn independently, so its share comes near its weight's 60 % (it
    // was ~45 % when both had to be distinct); endpoint-balancer-weights.test.ts holds the shares.
    const run = runLoad(b, time, 3000, 50, () => 10);
    expect(share(run, '127.0.0.1:8080')).toBeGreaterThan(0.37);
    expect(share(run, '127.0.0.2:8080')).toBeLessThan(0.32);
  });

  test('two endpoints, requests in flight: every pick goes to the one with fewer outstanding', () => {
    const { b } = setup();
    b.update([ep(1), ep(2)]);
    for (let i = 0; i < 4; i++) b.pick(new Set(['127.0.0.2:8080']));
    const next = [1, 2, 3, 4, 5, 6].map(() => b.pick()!.address);
    expect(next.slice(0, 4)).toEqual(Array(4).fill('127.0.0.2:8080'));
    expect(new Set(next.slice(4))).toEqual(new Set(['127.0.0.1:8080', '127.0.0.2:8080'])); // 5 and 5: then alternate
  });

  test('three endpoints, one with 5 in flight: it loses every pairing', () => {
    const { b } = setup();
    b.update([ep(1), ep(2), ep(3)]);
    for (let i = 0; i < 5; i++) b.pick(new Set(['127.0.0.2:8080', '127.0.0.3:8080']));
    const picked = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const l = b.pick()!;
      picked.add(l.address);
      l.end('cancelled');
    }
    expect(picked).toEqual(new Set(['127.0.0.2:8080', '127.0.0.3:8080']));
  });
});

describe('EndpointBalancer: endpoints that stop answering, and long-lived streams (audit 9b F1)', () => {
  test('a replica that takes requests and never answers gets few of them: its unanswered requests\' wait is its latency', () => {
    const { b, time } = setup({}, 3);
    b.update([ep(1), ep(2)]);
    runLoad(b, time, 200, 10, () => 2); // both known fast
    const hung = '127.0.0.1:8080';
    // 20 requests a second for 20 s; the hung replica never answers (its leases stay open), the other in 2 ms.
    const picks: string[] = [];
    for (let i = 0; i < 400; i++) {
      time.advance(50);
      const l = b.pick()!;
      picks.push(l.address);
      if (l.address !== hung) {
        l.observe(2);
        l.end('success');
      }
    }
    const toHung = picks.filter((a) => a === hung).length;
    expect(toHung).toBeLessThan(20); // it was 392 of 400: its estimate decayed to 0 and its pile counted for nothing
    expect(b.views().find((v) => v.address === hung)!.outstanding).toBe(toHung);
  });

  test('long-lived streams (answered, then held) spread by how many each replica holds, after the estimates went idle', () => {
    const { b, time } = setup({}, 5);
    b.update([ep(1), ep(2)]);
    runLoad(b, time, 100, 10, () => 2);
    time.advance(60_000); // idle: both estimates decayed
    const held = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      time.advance(20);
      const l = b.pick()!;
      l.observe(1 + (i % 3)); // the upgrade's answer; the tunnel stays open
      held.set(l.address, (held.get(l.address) ?? 0) + 1);
    }
    for (const n of held.values()) expect(n).toBeGreaterThan(100); // it was 298 of 300 on one
  });

  test('one request at a time after a pause goes to the replica not used last, more often than not', () => {
    const { b, time } = setup({}, 11);
    b.update([ep(1), ep(2)]);
    runLoad(b, time, 100, 10, () => 2);
    let last = '';
    let moved = 0;
    for (let i = 0; i < 40; i++) {
      time.advance(1_000);
      const l = b.pick()!;
      if (l.address !== last) moved++;
      last = l.address;
      l.observe(2 + (i % 2) * 0.5);
      l.end('success');
    }
    expect(moved).toBeGreaterThan(10);
  });
});

describe('EndpointBalancer: slow start', () => {
  test('a new endpoint added under ~100 req/s gets traffic within 2 s, and its share ramps up', () => {
    const { b, time } = setup({}, 5);
    b.update([ep(1), ep(2), ep(3)]);
    runLoad(b, time, 1000, 10, () => 10);
    b.update([ep(1), ep(2), ep(3), ep(4)]);
    const run = runLoad(b, time, 1500, 10, () => 10, 8); // 15 s of simulated time
    const fresh = (from: number, to: number) => run.picks.slice(from, to).filter((a) => a === '127.0.0.4:8080').length / (to - from);
    expect(fresh(0, 200)).toBeGreaterThan(0); // within the first 2 s
    expect(fresh(0, 200)).toBeLessThan(0.15); // but not a full share yet
    expect(fresh(1000, 1500)).toBeGreaterThan(0.18); // slow start over: about a quarter
    expect(fresh(0, 200)).toBeLessThan(fresh(500, 1000));
  });

  test('a new endpoint starts at the mean of the current estimates, not at the default', () => {
    const { b } = setup({ defaultRttMs: 500 });
    b.update([ep(1), ep(2)]);
    for (const [n, rtt] of [[1, 900], [2, 1100]] as const) {
      const l = b.pick(new Set([`127.0.0.${3 - n}:8080`]))!;
      l.observe(rtt);
      l.end('success');
    }
    b.update([ep(1), ep(2), ep(3)]);
    const views = new Map(b.views().map((v) => [v.address, v.ewmaMs]));
    expect(views.get('127.0.0.3:8080')).toBeCloseTo(1000, 3);
  });

  test('without slow start (0) a new endpoint gets its full share at once', () => {
    const { b, time } = setup({ slowStartMs: 0 }, 5);
    b.update([ep(1), ep(2), ep(3)]);
    runLoad(b, time, 1000, 10, () => 10);
    b.update([ep(1), ep(2), ep(3), ep(4)]);
    const run = runLoad(b, time, 200, 10, () => 10, 8);
    expect(share(run, '127.0.0.4:8080')).toBeGreaterThan(0.15);
  });
});

/** Picks with everything but `address` excluded and ends the attempt with `outcome`, `n` times. */
function attempts(b: EndpointBalancer<string>, address: string, n: number, outcome: Parameters<Lease<string>['end']>[0]): void {
  const others = new Set(b.views().map((v) => v.address).filter((a) => a !== address));
  for (let i = 0; i < n; i++) {
    const l = b.pick(others)!;
    expect(l.address).toBe(address);
    l.end(outcome);
  }
}

function picksOver(b: EndpointBalancer<string>, n: number): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const l = b.pick();
    if (!l) break;
    seen.add(l.address);
    l.end('cancelled');
  }
  return seen;
}

describe('EndpointBalancer: outliers', () => {
  test('5 consecutive failures eject an endpoint for 30 s, then 60 s; it is not picked meanwhile and returns lazily', () => {
    const { b, time, ejected } = setup();
    b.update([ep(1), ep(2), ep(3)]);
    attempts(b, '127.0.0.1:8080', 4, 'status_5xx');
    expect(ejected).toEqual([]);
    attempts(b, '127.0.0.1:8080', 1, 'connect_failed');
    expect(ejected).toEqual([['127.0.0.1:8080', 'consecutive_failures']]);
    expect(b.counts()).toEqual({ ready: 2, ejected: 1, draining: 0, not_ready: 0 });
    const v = b.views().find((x) => x.address === '127.0.0.1:8080')!;
    expect(v).toMatchObject({ state: 'ejected', ejections: 1, failures: 5, requests: 5, returnsAt: new Date(30_000).toISOString() });
    expect(picksOver(b, 200).has('127.0.0.1:8080')).toBe(false);
    time.advance(29_999);
    expect(picksOver(b, 200).has('127.0.0.1:8080')).toBe(false);
    time.advance(1);
    expect(picksOver(b, 200).has('127.0.0.1:8080')).toBe(true);
    expect(b.counts()).toEqual({ ready: 3, ejected: 0, draining: 0, not_ready: 0 });
    attempts(b, '127.0.0.1:8080', 5, 'reset');
    expect(b.views().find((x) => x.address === '127.0.0.1:8080')!.returnsAt).toBe(new Date(30_000 + 60_000).toISOString());
  });

  test('identity_mismatch ejects at once; a success in between resets the failure count', () => {
    const { b, ejected } = setup();
    b.update([ep(1), ep(2), ep(3)]);
    attempts(b, '127.0.0.2:8080', 4, 'reset');
    attempts(b, '127.0.0.2:8080', 1, 'success');
    attempts(b, '127.0.0.2:8080', 4, 'reset');
    attempts(b, '127.0.0.2:8080', 10, 'cancelled');
    expect(ejected).toEqual([]);
    attempts(b, '127.0.0.3:8080', 1, 'identity_mismatch');
    expect(ejected).toEqual([['127.0.0.3:8080', 'identity_mismatch']]);
  });

  test('no more than maxEjectionPercent of the endpoints are ejected at once', () => {
    const { b, ejected } = setup(); // default 50 %: 2 of 4
    b.update([ep(1), ep(2), ep(3), ep(4)]);
    for (const n of [1, 2, 3]) attempts(b, `127.0.0.${n}:8080`, 6, 'status_5xx');
    expect(ejected.map(([a]) => a)).toEqual(['127.0.0.1:8080', '127.0.0.2:8080']);
    expect(b.counts()).toEqual({ ready: 2, ejected: 2, draining: 0, not_ready: 0 });
  });

  test('panic: when every ready endpoint is ejected, picks go to the ejected ones rather than fail', () => {
    const { b } = setup({ outlier: { ...DEFAULT_ROUTING.outlier, maxEjectionPercent: 100 } });
    b.update([ep(1), ep(2), ep(3, { ready: false })]);
    attempts(b, '127.0.0.1:8080', 1, 'identity_mismatch');
    expect(picksOver(b, 50)).toEqual(new Set(['127.0.0.2:8080']));
    attempts(b, '127.0.0.2:8080', 1, 'identity_mismatch');
    expect(b.counts()).toEqual({ ready: 0, ejected: 2, draining: 0, not_ready: 1 });
    expect(picksOver(b, 100)).toEqual(new Set(['127.0.0.1:8080', '127.0.0.2:8080']));
    // Panic applies after exclusion: the one ejected endpoint not yet tried is still offered.
    expect(b.pick(new Set(['127.0.0.1:8080']))?.address).toBe('127.0.0.2:8080');
  });

  test('undefined only when no ready endpoint is left, or all are excluded', () => {
    const { b } = setup();
    expect(b.pick()).toBeUndefined();
    b.update([ep(1, { ready: false })]);
    expect(b.pick()).toBeUndefined();
    b.update([ep(1, { ready: false }), ep(2)]);
    expect(b.pick()?.address).toBe('127.0.0.2:8080');
    expect(b.pick(new Set(['127.0.0.2:8080']))).toBeUndefined();
  });
});

describe('EndpointBalancer: updates and draining', () => {
  test('a removed endpoint is retired at once, shown draining until its last attempt ends, and never picked', () => {
    const { b, retired } = setup();
    b.update([ep(1), ep(2)]);
    const l1 = b.pick(new Set(['127.0.0.2:8080']))!;
    const l2 = b.pick(new Set(['127.0.0.2:8080']))!;
    b.update([ep(2)]);
    expect(retired).toEqual(['127.0.0.1:8080#1']);
    expect(b.counts()).toEqual({ ready: 1, ejected: 0, draining: 1, not_ready: 0 });
    expect(b.views().map((v) => [v.address, v.state, v.outstanding])).toEqual([
      ['127.0.0.2:8080', 'ready', 0],
      ['127.0.0.1:8080', 'draining', 2],
    ]);
    expect(picksOver(b, 50)).toEqual(new Set(['127.0.0.2:8080']));
    l1.observe(5);
    l1.end('status_5xx');
    l1.end('status_5xx'); // a second end is ignored
    expect(b.views().find((v) => v.address === '127.0.0.1:8080')?.outstanding).toBe(1);
    l2.end('success');
    expect(b.views().map((v) => v.address)).toEqual(['127.0.0.2:8080']);
    expect(b.counts()).toEqual({ ready: 1, ejected: 0, draining: 0, not_ready: 0 });
    expect(retired).toEqual(['127.0.0.1:8080#1']); // retired once
  });

  test('a removed endpoint with nothing in flight disappears at once', () => {
    const { b, retired } = setup();
    b.update([ep(1), ep(2)]);
    b.update([ep(1)]);
    expect(retired).toEqual(['127.0.0.2:8080#2']);
    expect(b.views().map((v) => v.state)).toEqual(['ready']);
  });

  test('a changed SPIFFE ID or protocol replaces the resource; ready, weight and zone change in place', () => {
    const { b, created, retired } = setup();
    b.update([ep(1), ep(2)]);
    b.update([ep(1, { weight: 5, zone: 'z1', ready: false }), ep(2)]);
    expect(created).toEqual(['127.0.0.1:8080#1', '127.0.0.2:8080#2']);
    expect(retired).toEqual([]);
    expect(b.views()[0]).toMatchObject({ weight: 5, zone: 'z1', state: 'not_ready' });
    const held = b.pick()!;
    expect(held.address).toBe('127.0.0.2:8080');
    b.update([ep(1, { protocol: 'http2' }), ep(2, { spiffeId: 'spiffe://example.test/ns/default/sa/other' })]);
    expect(retired).toEqual(['127.0.0.1:8080#1', '127.0.0.2:8080#2']);
    expect(created).toEqual(['127.0.0.1:8080#1', '127.0.0.2:8080#2', '127.0.0.1:8080#3', '127.0.0.2:8080#4']);
    expect(b.views().map((v) => [v.address, v.state, v.spiffeId.split('/').at(-1)])).toEqual([
      ['127.0.0.1:8080', 'ready', 'api'],
      ['127.0.0.2:8080', 'ready', 'other'],
      ['127.0.0.2:8080', 'draining', 'api'], // the old identity finishes its attempt
    ]);
    expect(held.resource).toBe('127.0.0.2:8080#2');
    held.end('success');
    expect(b.views()).toHaveLength(2);
  });

  test('an update that changes nothing changes no state; close retires everything', () => {
    const { b, retired } = setup();
    b.update([ep(1), ep(2)]);
    const byAddress = () => b.states().sort(([x], [y]) => x.localeCompare(y));
    const before = byAddress();
    b.update([ep(2), ep(1)]);
    expect(byAddress()).toEqual(before);
    const held = b.pick()!;
    b.close();
    expect(retired.sort()).toEqual(['127.0.0.1:8080#1', '127.0.0.2:8080#2']);
    expect(b.pick()).toBeUndefined();
    expect(b.counts()).toEqual({ ready: 0, ejected: 0, draining: 1, not_ready: 0 });
    held.end('success');
    expect(b.views()).toEqual([]);
    b.update([ep(3)]);
    expect(b.views()).toEqual([]);
  });

  test('an endpoint that becomes ready again restarts slow start, at the mean estimate', () => {
    const { b, time } = setup({}, 9);
    b.update([ep(1), ep(2), ep(3)]);
    runLoad(b, time, 1000, 10, () => 10);
    b.update([ep(1), ep(2), ep(3, { ready: false })]);
    const stale = b.pick(new Set(['127.0.0.1:8080', '127.0.0.2:8080']));
    expect(stale).toBeUndefined();
    runLoad(b, time, 1000, 10, () => 10);
    b.update([ep(1), ep(2), ep(3)]);
    const mean = (b.views()[0]!.ewmaMs + b.views()[1]!.ewmaMs) / 2;
    expect(b.views()[2]!.ewmaMs).toBeCloseTo(mean, 2);
    const run = runLoad(b, time, 2000, 10, () => 10);
    const back = (from: number, to: number) => run.picks.slice(from, to).filter((a) => a === '127.0.0.3:8080').length / (to - from);
    expect(back(0, 200)).toBeGreaterThan(0);
    expect(back(0, 200)).toBeLessThan(0.25); // busier peers make it win more pairings than a new one among three
    expect(back(1000, 2000)).toBeGreaterThan(0.28); // after slow start: a full third, give or take
  });
});
