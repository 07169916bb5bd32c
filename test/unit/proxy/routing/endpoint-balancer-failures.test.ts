// A failed attempt makes its endpoint dearer to the balancer, whatever the failure (audit 57c F2): before, a refused
// connect fed no latency and a fast 503 a tiny one, so failing endpoints were the cheapest, and past
// maxEjectionPercent they took every attempt of most requests while a healthy one was ready. Fake clock, seeded
// random; the closed-loop runs go through ExchangeRoute's real retries and budget (test/helpers/route-load.ts).
// A 5xx is the exception (audit 57e F0): it may be the request's, not the endpoint's, so it costs nothing here;
// consecutive 5xx eject (outlier detection), as in Envoy and Linkerd.
import { describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING, type RoutingSettings } from '../../../../proxy/src/config/routing-config.js';
import { EndpointBalancer } from '../../../../proxy/src/routing/endpoint-balancer.js';
import type { Lease } from '../../../../proxy/src/routing/lease.js';
import { runLoad } from '../../../helpers/balancer-load.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { type Behaviour, runRouteLoad } from '../../../helpers/route-load.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const ID = 'spiffe://example.test/ns/default/sa/api';
const addr = (n: number) => `127.0.0.${n}:8080`;
const ep = (n: number): ServiceEndpoint => ({ host: `127.0.0.${n}`, port: 8080, spiffeId: ID, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' });
const [A, B, C] = [addr(1), addr(2), addr(3)];

function setup(n: number, settings: Partial<RoutingSettings> = {}, seed = 1) {
  const time = new FakeTime(0);
  const b = new EndpointBalancer<string>({ service: 'api', settings: { ...DEFAULT_ROUTING, slowStartMs: 0, ...settings }, nowMs: () => time.nowMs(), random: seededRandom(seed), create: (e) => `${e.host}:${e.port}`, retire: () => undefined });
  b.update(Array.from({ length: n }, (_, i) => ep(i + 1)));
  return { time, b };
}

const view = (b: EndpointBalancer<string>, address: string) => b.views().find((v) => v.address === address)!;

/** An attempt placed on `address` (every other endpoint excluded). */
function leaseOn(b: EndpointBalancer<string>, address: string): Lease<string> {
  const others = new Set(b.views().map((v) => v.address).filter((a) => a !== address));
  const l = b.pick(others)!;
  expect(l.address).toBe(address);
  return l;
}

/** Where `n` first attempts go, each ended `cancelled` at once (which changes nothing the next pick sees). */
function firstPicks(b: EndpointBalancer<string>, n: number): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const l = b.pick()!;
    seen.add(l.address);
    l.end('cancelled');
  }
  return seen;
}

/** A warm-up load (~2 requests in flight, so every endpoint answers) in which A answers fastest. */
const fasterA = (a: string) => (a === A ? 1.5 : 2.5);

/** Every failure kind of the endpoint the router knows, each as fast as it comes in practice. */
const KINDS = ['connect_failed', 'identity_mismatch', 'reset', 'bad_response', 'timeout', 'refused'] as const;

function failOnce(b: EndpointBalancer<string>, time: FakeTime, address: string, kind: (typeof KINDS)[number]): void {
  const l = leaseOn(b, address);
  if (kind === 'bad_response') {
    l.observe(0.2); // a quick malformed head: it fed a tiny latency, which made it look cheaper than before
    l.end('bad_response');
  } else if (kind === 'timeout') {
    time.advance(60_000); // no head within limits.requestTimeout
    l.end('timeout');
  } else if (kind === 'refused') {
    l.refused(); // its proxy refused the stream; the client then left, so the attempt says nothing else
    l.end('cancelled');
  } else {
    l.end(kind);
  }
}

describe('EndpointBalancer: every failure makes its endpoint dearer (audit 57c F2)', () => {
  test.each(KINDS)('%s: dearer than a healthy peer after one; out of the draw after two in a row, however loaded the peer, until the penalty fades; then one attempt finds it back', (kind) => {
    // Three endpoints: C is ejected for a wrong identity, which fills the ejection cap (1 of 3): A is never ejected.
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, baseEjectionMs: 3_600_000 } }, 7);
    runLoad(b, time, 1_000, 1, fasterA);
    failOnce(b, time, C, 'identity_mismatch');
    expect(view(b, C).state).toBe('ejected');
    expect(firstPicks(b, 50)).toEqual(new Set([A])); // the cheaper one until it fails

    failOnce(b, time, A, kind);
    expect(view(b, A).state).toBe('ready');
    expect(firstPicks(b, 50)).toEqual(new Set([B]));
    expect(view(b, A).penaltyMs).toBeGreaterThan(view(b, B).ewmaMs);

    failOnce(b, time, A, kind);
    const held = Array.from({ length: 20 }, () => leaseOn(b, B)); // B costs 21 × its latency now
    expect(firstPicks(b, 50)).toEqual(new Set([B]));

    time.advance(15_000); // every penalty here (60 s at most) has faded below the typical latency
    const probe = b.pick()!;
    expect(probe.address).toBe(A);
    probe.observe(2);
    probe.end('success');
    expect(view(b, A).penaltyMs).toBeLessThan(view(b, B).ewmaMs);
    expect(firstPicks(b, 20)).toEqual(new Set([A])); // B still holds 20
    for (const l of held) l.end('cancelled');
  });

  test.each([1, 2, 3])('requests that fail on every replica (a URL the app always answers 503) leave the others spread (seed %i)', (seed) => {
    // audit 57e F0: with 5xx penalised, 1 % such requests put 98.5 % of the healthy traffic on one of three replicas.
    // Outlier detection off (it may eject on consecutive 5xx, as Envoy's consecutive_5xx does): the balancer alone.
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } }, seed);
    const bad = seededRandom(seed + 70);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(3)], [C, answering(3)]]);
    const run = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed, requestFails: () => bad() < 0.05 });
    const total = [...run.attempts.values()].reduce((n, x) => n + x, 0);
    for (const a of [A, B, C]) expect(run.attempts.get(a)! / total, a).toBeGreaterThan(0.2);
  });

  test.each([1, 2, 3])('a replica that answers every request 503 is blamed once a retry succeeds elsewhere: it leaves the draw (seed %i)', (seed) => {
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } }, seed);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(3)], [C, () => ({ ms: 1, status: 503 })]]);
    const run = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed });
    const total = [...run.attempts.values()].reduce((n, x) => n + x, 0);
    expect(run.failed).toBe(0);
    expect(run.attempts.get(C)! / total).toBeLessThan(0.02);
  });

  test('a fast 4xx is a success: no penalty, and its endpoint stays the cheap one (routing.md: it draws traffic)', () => {
    const { b, time } = setup(2);
    runLoad(b, time, 1_000, 1, () => 2); // ~2 in flight: both answer
    const run = runLoad(b, time, 1_000, 1, (a) => (a === A ? 0.2 : 2)); // A refuses by policy: 403 in 0.2 ms
    expect(run.counts.get(A)! / 1_000).toBeGreaterThan(0.6);
    expect(view(b, A).penaltyMs).toBe(0);
  });

  test('cancelled (the client left, a deadline passed) says nothing about the endpoint: no penalty', () => {
    const { b, time } = setup(2);
    runLoad(b, time, 1_000, 1, () => 2); // ~2 in flight: every endpoint answers
    for (let i = 0; i < 5; i++) leaseOn(b, A).end('cancelled');
    expect(view(b, A).penaltyMs).toBe(0);
  });

  test('a timeout costs its endpoint at least the wait, where its unanswered attempt had counted only while it lasted', () => {
    const { b, time } = setup(2);
    runLoad(b, time, 1_000, 1, fasterA);
    const l = leaseOn(b, A);
    time.advance(30_000);
    l.end('timeout');
    expect(firstPicks(b, 50)).toEqual(new Set([B]));
    expect(view(b, A).penaltyMs).toBeGreaterThanOrEqual(30_000);
  });

  test('a retry goes to an endpoint that has not failed since its last success, not to one that failed fast', () => {
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } });
    runLoad(b, time, 1_000, 1, fasterA);
    const l = leaseOn(b, A);
    l.end('reset'); // one fast reset: its penalty is twice the typical latency, not enough to hold it out
    const retries = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = b.pick(new Set([C]))!; // C's attempt failed: the request's retry
      retries.add(r.address);
      r.end('cancelled');
    }
    expect(retries).toEqual(new Set([B]));
  });

  test('a retry goes to an endpoint that has answered before over one never tried (new in discovery, maybe dead)', () => {
    const { b, time } = setup(2);
    runLoad(b, time, 1_000, 1, () => 2);
    b.update([ep(1), ep(2), ep(3), ep(4)]); // 3 and 4 are new: not known to fail, not known to answer
    const retries = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = b.pick(new Set([addr(3)]))!; // the first attempt, on a new one, failed
      retries.add(r.address);
      r.end('cancelled');
    }
    expect([...retries].filter((a) => a !== A && a !== B)).toEqual([]);
  });
});

const refusing: Behaviour = () => 'refused';
const answering =
  (ms: number, status = 200): Behaviour =>
  () => ({ ms, status });

/** Failed attempts on endpoints other than `healthy`, per request. */
function wastePerRequest(run: ReturnType<typeof runRouteLoad>, healthy: readonly string[]): number {
  let n = 0;
  for (const [a, c] of run.attempts) if (!healthy.includes(a)) n += c;
  return n / run.requests;
}

describe('EndpointBalancer: failing endpoints under load, through the real retries (audit 57c F2)', () => {
  test.each([1, 2, 3])('past maxEjectionPercent, 1 healthy + 1 fast-503 + 5 refusing: no request fails once each failing endpoint failed once, failing ones take < 1 % of attempts (seed %i)', (seed) => {
    // 7 endpoints, 3 may be ejected: a healthy one and three failing ones stay in the draw. Before: ~73 % of the
    // requests failed, with ~1.5 failed attempts each (the audit measured 61-63 % on real processes). Now a request
    // fails only while its three attempts can all meet failing endpoints not known to fail yet: in the first
    // milliseconds, at most one per client.
    const { b, time } = setup(7, { slowStartMs: DEFAULT_ROUTING.slowStartMs }, seed);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(1, 503)]]);
    for (let n = 3; n <= 7; n++) behaviours.set(addr(n), refusing);
    const run = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed });
    expect(b.counts()).toMatchObject({ ejected: 3, ready: 4 });
    expect(run.requests).toBeGreaterThan(10_000);
    expect(run.failed).toBeLessThanOrEqual(8);
    expect(run.failedAtMs.filter((t) => t > 100)).toEqual([]);
    expect(wastePerRequest(run, [A])).toBeLessThan(0.01);
  });

  test.each([1, 2, 3])('2 healthy + 5 refusing: failed attempts stay under 0.01 per request (seed %i)', (seed) => {
    // Before: ~1.3 failed connects per request, as the audit's ~1 per request that cut throughput by 40 %.
    const { b, time } = setup(7, { slowStartMs: DEFAULT_ROUTING.slowStartMs }, seed);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(3)]]);
    for (let n = 3; n <= 7; n++) behaviours.set(addr(n), refusing);
    const run = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed });
    expect(run.failed).toBe(0);
    expect(wastePerRequest(run, [A, B])).toBeLessThan(0.01);
  });

  test.each([1, 2, 3])('one endpoint of three failing 10 % of its requests keeps some of its share, not most of it (seed %i)', (seed) => {
    // A penalty that doubles per failure in a row costs one stray failure little: a fixed one (5 s, as Linkerd's
    // load biaser) held such an endpoint to ~0.2 % of requests; before, it drew ~49 % (its failures looked cheap).
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } }, seed);
    const flaky = seededRandom(seed + 50);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(3)], [C, () => (flaky() < 0.1 ? 'refused' : { ms: 3, status: 200 })]]);
    const run = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed });
    const total = [...run.attempts.values()].reduce((s, n) => s + n, 0);
    const share = run.attempts.get(C)! / total;
    expect(share).toBeGreaterThan(0.05);
    expect(share).toBeLessThan(0.3);
  });

  test.each([1, 2, 3])('an endpoint that refuses for 10 s (never ejected) takes < 1 % of attempts meanwhile, and answers again within 5 s of recovering (seed %i)', (seed) => {
    const { b, time } = setup(3, { outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } }, seed);
    const behaviours = new Map<string, Behaviour>([[A, answering(3)], [B, answering(3)], [C, (t) => (t < 10_000 ? 'refused' : { ms: 3, status: 200 })]]);
    const during = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 10_000, seed });
    expect(during.failed).toBe(0);
    expect(wastePerRequest(during, [A, B])).toBeLessThan(0.01);
    const after = runRouteLoad(b, time, behaviours, { concurrency: 8, durationMs: 6_000, seed: seed + 10 });
    const okIn = (s: number) => after.okPerSecond.get(`${C} ${s}`) ?? 0;
    const fair = after.requests / 6 / 3;
    expect(Math.max(okIn(4), okIn(5))).toBeGreaterThan(fair / 2);
  });
});
