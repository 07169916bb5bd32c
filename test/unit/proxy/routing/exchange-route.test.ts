// One request's attempts over a real EndpointBalancer and RetryBudget (fake clock, seeded random): which failures
// go to another endpoint, under which budget, how many times, never twice to one endpoint, after which backoff,
// and what is reported per attempt; exchangeOutcome's table, connectFailureReason and retryableMethod.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING, type RetrySettings, type RoutingSettings } from '../../../../proxy/src/config/routing-config.js';
import { EndpointBalancer } from '../../../../proxy/src/routing/endpoint-balancer.js';
import { attemptTimeout, type ExchangeEnd, ExchangeRoute, connectFailureReason, exchangeOutcome, type RetryReason, type RouteDeps, retryableMethod, tunnelOutcome } from '../../../../proxy/src/routing/exchange-route.js';
import type { AttemptOutcome } from '../../../../proxy/src/routing/lease.js';
import { RetryBudget } from '../../../../proxy/src/routing/retry-budget.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const SERVICE = 'api.default';
const ID = 'spiffe://example.test/ns/default/sa/api';

function ep(n: number): ServiceEndpoint {
  return { host: `127.0.0.${n}`, port: 8080, spiffeId: ID, protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' };
}

interface Setup {
  readonly time: FakeTime;
  readonly balancer: EndpointBalancer<{ label: string }>;
  readonly deps: RouteDeps<{ label: string }>;
  readonly retries: [string, RetryReason][];
  readonly attempts: [string, string, AttemptOutcome][];
  readonly latencies: [string, string, number][];
}

/** `endpoints` replicas (plain objects as resources), the real budget; slow start off and no ejection so picks stay plain. */
function setup(o: { endpoints?: number; retry?: Partial<RetrySettings>; seed?: number; backoffRandom?: () => number; headTimeoutMs?: number } = {}): Setup {
  const time = new FakeTime(0);
  const settings: RoutingSettings = { ...DEFAULT_ROUTING, slowStartMs: 0, outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } };
  const retry: RetrySettings = { ...DEFAULT_ROUTING.retry, ...o.retry };
  const balancer = new EndpointBalancer<{ label: string }>({
    service: SERVICE,
    settings,
    nowMs: () => time.nowMs(),
    random: seededRandom(o.seed ?? 1),
    create: (e) => ({ label: `${e.host}:${e.port}` }),
    retire: () => undefined,
  });
  balancer.update(Array.from({ length: o.endpoints ?? 3 }, (_, i) => ep(i + 1)));
  const budget = new RetryBudget(retry, () => time.nowMs());
  const retries: [string, RetryReason][] = [];
  const attempts: [string, string, AttemptOutcome][] = [];
  const latencies: [string, string, number][] = [];
  const deps: RouteDeps<{ label: string }> = {
    service: SERVICE,
    pick: (exclude) => balancer.pick(exclude),
    budget,
    retry,
    headTimeoutMs: o.headTimeoutMs ?? 60_000,
    nowMs: () => time.nowMs(),
    random: o.backoffRandom ?? seededRandom((o.seed ?? 1) + 100),
    onRetry: (s, r) => retries.push([s, r]),
    onAttempt: (s, a, out) => attempts.push([s, a, out]),
    onLatency: (s, a, sec) => latencies.push([s, a, sec]),
  };
  return { time, balancer, deps, retries, attempts, latencies };
}

function open<R>(deps: RouteDeps<R>): ExchangeRoute<R> {
  const r = ExchangeRoute.open(deps);
  if (!r) throw new Error('no endpoint');
  return r;
}

const outstanding = (b: EndpointBalancer<unknown>) => b.views().reduce((s, v) => s + v.outstanding, 0);

const BEFORE_ANY_BYTE: RetryReason[] = ['connect_failed', 'identity_mismatch', 'pool_closed', 'queue_full'];

describe('failures before any byte', () => {
  test.each(BEFORE_ANY_BYTE)('%s goes to another endpoint for any method, outside an empty budget, at once', (reason) => {
    // A budget that allows no retry at all: ratio 0 and no reserve.
    const s = setup({ endpoints: 3, retry: { budgetRatio: 0, minRetriesPerSecond: 0, maxRetries: 2 } });
    const route = open(s.deps);
    const first = route.address;
    const next = route.retry(reason, false); // not replayable: a POST with its body gone
    expect(next).not.toBeNull();
    expect(next!.delayMs).toBe(0);
    expect(next!.lease.address).not.toBe(first);
    expect(route.address).toBe(next!.lease.address);
    expect(route.resource.label).toBe(next!.lease.address);
    expect(route.retries).toBe(1);
    expect(s.retries).toEqual([[SERVICE, reason]]);
    // The failed attempt is reported once, under the endpoint that failed.
    const outcome = reason === 'queue_full' ? 'cancelled' : reason === 'identity_mismatch' ? 'identity_mismatch' : 'connect_failed';
    expect(s.attempts).toEqual([[SERVICE, first, outcome]]);
  });

  test('a second connect failure goes to the third endpoint, then the route has none left', () => {
    const s = setup({ endpoints: 3, retry: { budgetRatio: 0, minRetriesPerSecond: 0, maxRetries: 5 } });
    const route = open(s.deps);
    const seen = [route.address];
    for (let i = 0; i < 2; i++) seen.push(route.retry('connect_failed', false)!.lease.address);
    expect(new Set(seen).size).toBe(3);
    expect(route.retry('connect_failed', false)).toBeNull();
    expect(s.attempts.map((a) => a[1])).toEqual(seen);
    expect(outstanding(s.balancer)).toBe(0);
  });
});

describe('failures after bytes were sent', () => {
  test.each<RetryReason>(['status_5xx', 'reset', 'bad_response'])('%s is not retried when the request cannot be replayed', (reason) => {
    const s = setup({ endpoints: 3, retry: { minRetriesPerSecond: 1000 } });
    const route = open(s.deps);
    const first = route.address;
    route.dispatched(); // a 5xx or a reset comes after the request went out
    expect(route.retry(reason, false)).toBeNull();
    expect(route.retries).toBe(0);
    expect(s.retries).toEqual([]);
    expect(s.attempts).toEqual([[SERVICE, first, reason]]);
    // The attempt already ended: the exchange's end is a no-op.
    route.end('success');
    expect(s.attempts).toHaveLength(1);
    expect(outstanding(s.balancer)).toBe(0);
  });

  test.each<RetryReason>(['status_5xx', 'reset', 'bad_response'])('%s is retried on another endpoint when replayable, after a backoff', (reason) => {
    const s = setup({ endpoints: 3, retry: { minRetriesPerSecond: 1000, backoffBaseMs: 40, backoffMaxMs: 1000 } });
    const route = open(s.deps);
    const first = route.address;
    route.dispatched();
    const next = route.retry(reason, true);
    expect(next).not.toBeNull();
    expect(next!.lease.address).not.toBe(first);
    expect(next!.delayMs).toBeGreaterThanOrEqual(20);
    expect(next!.delayMs).toBeLessThanOrEqual(40);
    expect(s.retries).toEqual([[SERVICE, reason]]);
    expect(s.attempts).toEqual([[SERVICE, first, reason]]);
  });

  test('a retry whose backoff would end at or past the total deadline is not made, not counted, and takes no budget', () => {
    const s = setup({ endpoints: 3, retry: { minRetriesPerSecond: 1, backoffBaseMs: 40, backoffMaxMs: 40 }, backoffRandom: () => 1 });
    const route = open(s.deps);
    route.dispatched();
    // The backoff is 40 ms: a deadline 40 ms away is too near, 41 ms is not.
    expect(route.retry('status_5xx', true, s.time.nowMs() + 40)).toBeNull();
    expect(s.retries).toEqual([]);
    const again = open(s.deps);
    again.dispatched();
    const next = again.retry('status_5xx', true, s.time.nowMs() + 41);
    expect(next?.delayMs).toBe(40);
    expect(s.retries).toEqual([[SERVICE, 'status_5xx']]);
    // A connection failure has no backoff: it fits any deadline still ahead.
    const third = open(s.deps);
    expect(third.retry('connect_failed', false, s.time.nowMs() + 1)).not.toBeNull();
  });

  test('the ratio counts every opened request: 10 requests at 20 % allow 2 retries, the third is refused', () => {
    const s = setup({ endpoints: 3, retry: { budgetRatio: 0.2, minRetriesPerSecond: 0, budgetTtlMs: 10_000 } });
    const routes = Array.from({ length: 10 }, () => open(s.deps));
    const results = routes.slice(0, 4).map((r) => r.retry('status_5xx', true));
    expect(results.map((r) => r !== null)).toEqual([true, true, false, false]);
    expect(s.retries).toHaveLength(2);
    // Connection failures stay outside the spent budget.
    expect(routes[4]!.retry('connect_failed', false)).not.toBeNull();
    // Retries do not earn retries: a retried request deposited once, whatever its attempts.
    expect(routes[0]!.retry('status_5xx', true)).toBeNull();
  });

  test('a retry refused because every endpoint was tried does not spend the budget', () => {
    // A reserve of exactly 2 retries in the window, 2 endpoints.
    const s = setup({ endpoints: 2, retry: { budgetRatio: 0, minRetriesPerSecond: 2, budgetTtlMs: 1_000, maxRetries: 5 } });
    const first = open(s.deps);
    expect(first.retry('status_5xx', true)).not.toBeNull(); // 1 of 2
    expect(first.retry('status_5xx', true)).toBeNull(); // nowhere left to go: nothing spent
    expect(open(s.deps).retry('status_5xx', true)).not.toBeNull(); // 2 of 2
    expect(open(s.deps).retry('status_5xx', true)).toBeNull(); // now spent
    expect(s.retries).toHaveLength(2);
  });

  test('a spent reserve stops retries until the window has passed', () => {
    // No ratio: only the floor, 2 retries per second over a 1 s window.
    const s = setup({ endpoints: 3, retry: { budgetRatio: 0, minRetriesPerSecond: 2, budgetTtlMs: 1_000 } });
    const outcomes = () => Array.from({ length: 4 }, () => open(s.deps).retry('reset', true) !== null);
    expect(outcomes()).toEqual([true, true, false, false]);
    s.time.advance(500);
    expect(outcomes()).toEqual([false, false, false, false]);
    s.time.advance(600); // the first retries have left the window
    expect(outcomes()).toEqual([true, true, false, false]);
    expect(s.retries).toHaveLength(4);
  });
});

describe('limits', () => {
  test.each([0, 1, 2, 3])('maxRetries %i: exactly that many retries, for every kind of failure', (maxRetries) => {
    const s = setup({ endpoints: 6, retry: { maxRetries, minRetriesPerSecond: 1000 } });
    for (const reasons of [['connect_failed'], ['status_5xx'], ['connect_failed', 'reset']] as RetryReason[][]) {
      const route = open(s.deps);
      let n = 0;
      while (route.retry(reasons[n % reasons.length]!, true)) n++;
      expect(n).toBe(maxRetries);
      expect(route.retries).toBe(maxRetries);
    }
  });

  test('no endpoint is tried twice by one request, over many seeds', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const s = setup({ endpoints: 4, seed, retry: { maxRetries: 5, minRetriesPerSecond: 1000, backoffBaseMs: 0 } });
      const route = open(s.deps);
      const seen = [route.address];
      for (;;) {
        const next = route.retry(seed % 2 ? 'connect_failed' : 'status_5xx', true);
        if (!next) break;
        seen.push(next.lease.address);
      }
      expect(seen).toHaveLength(4);
      expect(new Set(seen).size).toBe(4);
    }
  });

  test('a service without endpoints opens no route, and deposits nothing toward the budget', () => {
    // Ratio 1, no reserve: every opened request pays for exactly one retry.
    const s = setup({ endpoints: 0, retry: { budgetRatio: 1, minRetriesPerSecond: 0, maxRetries: 5 } });
    for (let i = 0; i < 5; i++) expect(ExchangeRoute.open(s.deps)).toBeNull();
    s.balancer.update([ep(1), ep(2), ep(3)]);
    const route = open(s.deps);
    expect(route.retry('status_5xx', true)).not.toBeNull(); // its own deposit
    expect(route.retry('status_5xx', true)).toBeNull(); // the refused opens paid for nothing
  });
});

describe('a stream the endpoint refused (replayRefused: the same endpoint, on another session)', () => {
  test('is a retry under the limit and the budget, counted `refused`, the attempt going on with the same endpoint', () => {
    // Ratio 1, no reserve: each request pays for exactly one retry.
    const s = setup({ endpoints: 3, retry: { budgetRatio: 1, minRetriesPerSecond: 0, maxRetries: 2 } });
    const route = open(s.deps);
    const first = route.address;
    expect(route.replayRefused(Number.POSITIVE_INFINITY)).toBe(true);
    expect(route.address).toBe(first);
    expect(route.retries).toBe(1);
    expect(s.retries).toEqual([[SERVICE, 'refused']]);
    expect(s.attempts).toEqual([]); // nothing said of the endpoint yet: the attempt goes on
    expect(route.replayRefused(Number.POSITIVE_INFINITY)).toBe(false); // the budget is spent
    expect(route.retry('status_5xx', true)).toBeNull(); // and so for any other retry after bytes were sent
  });

  test('not past maxRetries, nor at or past the total deadline, nor with an empty budget', () => {
    const limited = setup({ endpoints: 3, retry: { minRetriesPerSecond: 1000, maxRetries: 1 } });
    const a = open(limited.deps);
    expect(a.retry('connect_failed', false)).not.toBeNull();
    expect(a.replayRefused(Number.POSITIVE_INFINITY)).toBe(false);
    const late = open(limited.deps);
    expect(late.replayRefused(limited.time.nowMs())).toBe(false);
    const poor = setup({ endpoints: 3, retry: { budgetRatio: 0, minRetriesPerSecond: 0, maxRetries: 5 } });
    expect(open(poor.deps).replayRefused(Number.POSITIVE_INFINITY)).toBe(false);
    expect(poor.retries).toEqual([]);
  });
});

describe('backoff', () => {
  const base = 100;
  const max = 1000;
  // The ceiling of the n-th retry: base · 2^(n-1), capped at max.
  const ceiling = (n: number) => Math.min(max, base * 2 ** (n - 1));

  function delays(random: () => number): number[] {
    const s = setup({ endpoints: 7, backoffRandom: random, retry: { maxRetries: 5, minRetriesPerSecond: 1000, backoffBaseMs: base, backoffMaxMs: max } });
    const route = open(s.deps);
    const out: number[] = [];
    for (;;) {
      const next = route.retry('status_5xx', true);
      if (!next) return out;
      out.push(next.delayMs);
    }
  }

  test('the lowest draw gives half the ceiling, the highest all of it, doubling per retry up to the cap', () => {
    expect(delays(() => 0)).toEqual([50, 100, 200, 400, 500]);
    expect(delays(() => 0.999_999_9)).toEqual([100, 200, 400, 800, 1000]);
  });

  test('seeded draws stay within [ceiling/2, ceiling] and spread across it', () => {
    const firsts: number[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const d = delays(seededRandom(seed));
      expect(d).toHaveLength(5);
      d.forEach((ms, i) => {
        expect(ms).toBeGreaterThanOrEqual(ceiling(i + 1) / 2);
        expect(ms).toBeLessThanOrEqual(ceiling(i + 1));
      });
      firsts.push(d[0]!);
    }
    expect(Math.min(...firsts)).toBeLessThan(60);
    expect(Math.max(...firsts)).toBeGreaterThan(90);
  });

  test('a failure before any byte waits for nothing, and still counts toward the next backoff', () => {
    const s = setup({ endpoints: 4, backoffRandom: () => 0, retry: { maxRetries: 3, minRetriesPerSecond: 1000, backoffBaseMs: base, backoffMaxMs: max } });
    const route = open(s.deps);
    expect(route.retry('connect_failed', false)!.delayMs).toBe(0);
    expect(route.retry('status_5xx', true)!.delayMs).toBe(100); // second retry: base · 2, halved
  });
});

describe('what the access log names', () => {
  test('during a retry backoff the failed attempt, the next endpoint only once its backoff ended', () => {
    const s = setup({ endpoints: 3, retry: { minRetriesPerSecond: 1000, backoffBaseMs: 100, backoffMaxMs: 100 } });
    const route = open(s.deps);
    const first = route.address;
    route.dispatched();
    const next = route.retry('status_5xx', true)!;
    expect(next.delayMs).toBeGreaterThan(0);
    // A client that leaves now left an exchange whose next endpoint was never contacted.
    expect(route.address).toBe(first);
    expect(route.logged.address).toBe(first);
    expect(route.resource.label).toBe(next.lease.address);
    s.time.advance(next.delayMs);
    expect(route.address).toBe(next.lease.address);
  });

  test('an at-once retry (a failure before any byte) names the new endpoint at once', () => {
    const s = setup({ endpoints: 3 });
    const route = open(s.deps);
    const next = route.retry('connect_failed', false)!;
    expect(next.delayMs).toBe(0);
    expect(route.address).toBe(next.lease.address);
  });
});

describe('reports', () => {
  test('one onAttempt per attempt, with that attempt’s address and outcome; the balancer’s load returns to zero', () => {
    const s = setup({ endpoints: 3, retry: { maxRetries: 2, minRetriesPerSecond: 1000 } });
    const route = open(s.deps);
    const a1 = route.address;
    expect(outstanding(s.balancer)).toBe(1);
    const a2 = route.retry('connect_failed', false)!.lease.address;
    expect(outstanding(s.balancer)).toBe(1);
    route.dispatched();
    const a3 = route.retry('status_5xx', true)!.lease.address;
    route.dispatched();
    route.end('success');
    route.end('status_5xx'); // ignored: the attempt already ended
    expect(s.attempts).toEqual([
      [SERVICE, a1, 'connect_failed'],
      [SERVICE, a2, 'status_5xx'],
      [SERVICE, a3, 'success'],
    ]);
    expect(s.retries).toEqual([
      [SERVICE, 'connect_failed'],
      [SERVICE, 'status_5xx'],
    ]);
    expect(outstanding(s.balancer)).toBe(0);
    const byAddress = new Map(s.balancer.views().map((v) => [v.address, v]));
    expect(byAddress.get(a1)!.failures).toBe(1);
    expect(byAddress.get(a2)!.failures).toBe(1);
    expect(byAddress.get(a3)!.failures).toBe(0);
    expect(byAddress.get(a3)!.requests).toBe(1);
  });

  test('an attempt that never reached its endpoint (ended during a backoff) is cancelled, not the endpoint’s failure', () => {
    const s = setup({ endpoints: 2, retry: { minRetriesPerSecond: 1000 } });
    const route = open(s.deps);
    route.dispatched();
    const next = route.retry('status_5xx', true)!;
    route.end('status_5xx'); // a request timeout fired while the retry waited for its backoff
    expect(s.attempts).toEqual([
      [SERVICE, expect.any(String), 'status_5xx'],
      [SERVICE, next.lease.address, 'cancelled'],
    ]);
  });

  test('latency is measured from dispatch to the response head, in seconds, under the attempt’s endpoint', () => {
    const s = setup({ endpoints: 2, retry: { minRetriesPerSecond: 1000, backoffBaseMs: 0 } });
    const route = open(s.deps);
    s.time.advance(300); // connecting: not the endpoint's latency
    route.dispatched();
    s.time.advance(40);
    route.responded();
    const a1 = route.address;
    const next = route.retry('status_5xx', true)!;
    s.time.advance(7);
    route.dispatched();
    s.time.advance(12);
    route.responded();
    route.end('success');
    expect(s.latencies).toEqual([
      [SERVICE, a1, 0.04],
      [SERVICE, next.lease.address, 0.012],
    ]);
    expect(s.attempts.map((a) => a[2])).toEqual(['status_5xx', 'success']);
  });

  test('a refused retry reports the failed attempt once and nothing more', () => {
    const s = setup({ endpoints: 2, retry: { budgetRatio: 0, minRetriesPerSecond: 0 } });
    const route = open(s.deps);
    expect(route.retry('status_5xx', true)).toBeNull(); // budget empty
    expect(route.retry('status_5xx', true)).toBeNull();
    route.end('status_5xx');
    expect(s.attempts).toHaveLength(1);
    expect(s.retries).toEqual([]);
    expect(outstanding(s.balancer)).toBe(0);
  });
});

describe('exchangeOutcome', () => {
  // A stream_idle_timeout while the client's own request body was incomplete (HTTP 408, gRPC DEADLINE_EXCEEDED) is
  // the client's stall: cancelled, neither the endpoint's failure nor a success that resets its count (audit 30c F1).
  test.each<[number, string | undefined, string | undefined, string | undefined, boolean, boolean, ExchangeEnd]>([
    [408, 'stream_idle_timeout', 'stream_idle_timeout', undefined, false, false, 'cancelled'],
    [504, 'stream_idle_timeout', 'stream_idle_timeout', undefined, false, false, 'cancelled'],
    [200, 'stream_idle_timeout', 'stream_idle_timeout', '4', false, false, 'cancelled'],
    [200, undefined, 'stream_idle_timeout', undefined, false, false, 'cancelled'],
    // The body was held back by the upstream (it stopped reading it): the endpoint's stall, `timeout` (audit 32a F1).
    [504, 'stream_idle_timeout', 'stream_idle_timeout', undefined, false, true, 'upstream_stalled'],
    [200, 'stream_idle_timeout', 'stream_idle_timeout', '4', false, true, 'upstream_stalled'],
    // The whole request was sent and the upstream went quiet: as before.
    [504, 'stream_idle_timeout', 'stream_idle_timeout', undefined, true, false, 'status_5xx'],
    [200, undefined, 'stream_idle_timeout', undefined, true, false, 'success'],
    // An incomplete request says nothing by itself: a 5xx or a reset while the body was still coming is the endpoint's.
    [503, undefined, undefined, undefined, false, false, 'status_5xx'],
    [502, 'upstream_reset', 'upstream_closed', undefined, false, false, 'reset'],
    // The client leaving while bytes waited upstream is still the client's.
    [499, 'downstream_reset', 'downstream_closed', undefined, false, true, 'cancelled'],
  ])('status %i, error %s, flag %s, grpc-status %s, request complete %s, held upstream %s → %s', (status, error, flag, grpcStatus, complete, held, outcome) => {
    expect(exchangeOutcome(status, error, flag, grpcStatus, complete, held)).toBe(outcome);
  });

  test.each<[number, string | undefined, string | undefined, AttemptOutcome]>([
    [200, undefined, undefined, 'success'],
    [404, undefined, undefined, 'success'],
    [499, undefined, undefined, 'success'],
    [500, undefined, undefined, 'status_5xx'],
    [503, undefined, undefined, 'status_5xx'],
    [599, undefined, undefined, 'status_5xx'],
    // A malformed answer and a head that never came are the endpoint's failures, each under its own outcome.
    [502, 'bad_upstream_response', undefined, 'bad_response'],
    [200, 'bad_upstream_response', undefined, 'bad_response'],
    [504, undefined, 'request_timeout', 'timeout'],
    [504, 'request_timeout', 'request_timeout', 'timeout'],
    [502, 'upstream_reset', 'upstream_closed', 'reset'],
    [200, undefined, 'upstream_closed', 'reset'],
    [502, 'upstream_unavailable', undefined, 'connect_failed'],
    [503, 'upstream_unavailable', undefined, 'connect_failed'],
    [499, undefined, 'downstream_closed', 'cancelled'],
    [200, undefined, 'downstream_closed', 'cancelled'],
    [504, undefined, 'total_timeout', 'cancelled'],
    [502, 'downstream_reset', undefined, 'cancelled'],
    // The client leaving wins over what the upstream did meanwhile.
    [502, 'upstream_reset', 'downstream_closed', 'cancelled'],
  ])('status %i, error %s, flag %s → %s', (status, error, flag, outcome) => {
    expect(exchangeOutcome(status, error, flag, undefined, true, false)).toBe(outcome);
  });

  test.each<[number, string | undefined, string | undefined, string | undefined, AttemptOutcome]>([
    // A gRPC call that failed as HTTP 200: only UNAVAILABLE is the endpoint's failure (Envoy: 503), from the app or
    // from the endpoint's sidecar (its app down); what the call itself did is a success for ejection.
    [200, undefined, undefined, '14', 'status_5xx'],
    [200, undefined, undefined, '0', 'success'],
    [200, undefined, undefined, '2', 'success'],
    [200, undefined, undefined, '4', 'success'],
    [200, undefined, undefined, '7', 'success'],
    [200, undefined, undefined, '9', 'success'],
    [200, undefined, undefined, '13', 'success'],
    [200, undefined, undefined, 'none', 'success'],
    [200, undefined, undefined, undefined, 'success'],
    // Who ended it first still decides, as for HTTP.
    [200, undefined, 'downstream_closed', '14', 'cancelled'],
    [200, 'upstream_unavailable', undefined, '14', 'connect_failed'],
    [200, undefined, 'upstream_closed', '14', 'reset'],
    [503, undefined, undefined, '14', 'status_5xx'],
  ])('gRPC: status %i, error %s, flag %s, grpc-status %s → %s', (status, error, flag, grpcStatus, outcome) => {
    expect(exchangeOutcome(status, error, flag, grpcStatus, true, false)).toBe(outcome);
  });
});

describe('connectFailureReason', () => {
  test.each<[unknown, RetryReason]>([
    [new TesseraError('TESSERA_ERR_UPSTREAM_QUEUE_FULL'), 'queue_full'],
    [new TesseraError('TESSERA_ERR_UPSTREAM_POOL_CLOSED'), 'pool_closed'],
    [new TesseraError('TESSERA_ERR_SVID_NO_URI_SAN'), 'identity_mismatch'],
    [new TesseraError('TESSERA_ERR_SVID_MALFORMED'), 'identity_mismatch'],
    [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'connect_failed'],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'connect_failed'],
    [new Error('no code'), 'connect_failed'],
    [null, 'connect_failed'],
    [undefined, 'connect_failed'],
  ])('%s → %s', (err, reason) => {
    expect(connectFailureReason(err)).toBe(reason);
  });
});

describe('retryableMethod', () => {
  test.each(['GET', 'HEAD', 'OPTIONS', 'TRACE'])('%s is retryable on any route', (m) => {
    expect(retryableMethod(m, false)).toBe(true);
  });
  test.each(['POST', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'get', 'PROPFIND'])('%s only on a route marked retryable', (m) => {
    expect(retryableMethod(m, false)).toBe(false);
    expect(retryableMethod(m, true)).toBe(true);
  });
});

describe('tunnelOutcome: what a TCP tunnel says about its endpoint (audit 30c F2)', () => {
  test.each<[string | undefined, AttemptOutcome]>([
    [undefined, 'success'],
    ['upstream_reset', 'reset'],
    // An idle tunnel the proxy closed, or the client's own reset: the endpoint did nothing wrong.
    ['idle_timeout', 'cancelled'],
    ['downstream_reset', 'cancelled'],
  ])('relay error %s → %s', (error, outcome) => {
    expect(tunnelOutcome(error)).toBe(outcome);
  });
});

describe('a head deadline shared by the exchange: charged only to an attempt that had its share (audit 30c F3)', () => {
  test.each<[number, number, 'timeout' | 'cancelled']>([
    [0, 1000, 'cancelled'],
    [5, 15_000, 'cancelled'],
    [499, 1000, 'cancelled'],
    [500, 1000, 'timeout'],
    [1000, 1000, 'timeout'],
    [20_000, 15_000, 'timeout'],
  ])('an attempt of %i ms under a head deadline of %i ms → %s', (attemptMs, headMs, outcome) => {
    expect(attemptTimeout(attemptMs, headMs)).toBe(outcome);
  });

  test('a retry dispatched 5 ms before the deadline is not charged its timeout; the first attempt, which had it all, is', () => {
    const s = setup({ endpoints: 3, headTimeoutMs: 1000, retry: { minRetriesPerSecond: 1000, backoffBaseMs: 10, backoffMaxMs: 10 } });
    const route = open(s.deps);
    const first = route.address;
    route.dispatched();
    s.time.advance(985);
    const next = route.retry('status_5xx', true)!;
    s.time.advance(next.delayMs);
    route.dispatched();
    s.time.advance(1000 - 985 - next.delayMs);
    route.end(exchangeOutcome(504, 'request_timeout', 'request_timeout', undefined, true, false));
    expect(s.attempts).toEqual([
      [SERVICE, first, 'status_5xx'],
      [SERVICE, next.lease.address, 'cancelled'],
    ]);
    const one = open(s.deps);
    one.dispatched();
    s.time.advance(1000);
    one.end('timeout');
    expect(s.attempts.at(-1)).toEqual([SERVICE, one.address, 'timeout']);
  });

  test('an endpoint that stopped reading the body is charged `timeout` however little of the head deadline passed (audit 32a F1)', () => {
    const s = setup({ endpoints: 1, headTimeoutMs: 15_000 });
    const route = open(s.deps);
    route.dispatched();
    s.time.advance(1000);
    route.end(exchangeOutcome(504, 'stream_idle_timeout', 'stream_idle_timeout', undefined, false, true));
    expect(s.attempts.at(-1)).toEqual([SERVICE, route.address, 'timeout']);
    // The client's own stall, at the same moment: nothing charged.
    const mine = open(s.deps);
    mine.dispatched();
    s.time.advance(1000);
    mine.end(exchangeOutcome(408, 'stream_idle_timeout', 'stream_idle_timeout', undefined, false, false));
    expect(s.attempts.at(-1)).toEqual([SERVICE, mine.address, 'cancelled']);
  });
});
