// A listener's or route's total `timeout` on the HTTP/1.1 path, with the clock and the exchange timers in the test's
// hands (audit 19a F1). The sweep alone let a late answer through and its 504 come up to a second late, and a retry
// started past the total: the exchange now has a timer at its deadline (only when a total is set), nothing of an
// answer that arrives past it is relayed, and no retry attempt starts at or past it.
import { realTimers, type Timers } from '../../../../shared-io/timers.js';
import type * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING, type RetrySettings } from '../../../../proxy/src/config/routing-config.js';
import type { RequestPlan } from '../../../../proxy/src/http1/http1-session-types.js';
import { EndpointBalancer } from '../../../../proxy/src/routing/endpoint-balancer.js';
import { ExchangeRoute, exchangeOutcome } from '../../../../proxy/src/routing/exchange-route.js';
import { RetryBudget } from '../../../../proxy/src/routing/retry-budget.js';
import { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { type Cleanup, type Harness, type HarnessOptions, client, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Timers on the harness clock: they fire only when the test runs them (fire), never by themselves. */
function fakeTimers(nowMs: () => number): Pick<Timers, 'setTimeout' | 'clearTimeout'> & { pending: () => number; fire: () => void } {
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 0;
  return {
    setTimeout: (fn, ms) => {
      timers.set(++next, { at: nowMs() + ms, fn });
      return next;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    pending: () => timers.size,
    fire: () => {
      for (const [h, t] of [...timers]) {
        if (t.at > nowMs()) continue;
        timers.delete(h);
        t.fn();
      }
    },
  };
}

/** A harness whose exchange timers are fake ones on its clock; request and idle timeouts far off. */
async function withTimers(appPort: number, o: HarnessOptions = {}): Promise<{ h: Harness; timers: ReturnType<typeof fakeTimers> }> {
  const box: { h?: Harness } = {};
  const timers = fakeTimers(() => box.h!.clock.now);
  box.h = await http1Harness(appPort, cleanups, { ...o, limits: { requestTimeoutMs: 60_000, streamIdleTimeoutMs: 60_000 }, timers });
  return { h: box.h, timers };
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nhost: api\r\n\r\n`;
const reply = (status: string, body: string) => `HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

/** An app that holds each request until the test answers it. */
async function heldApp() {
  const held: net.Socket[] = [];
  const a = await rawApp(cleanups, (s) => s.on('data', () => held.push(s)));
  return { port: a.port, held };
}

describe('total timeout on HTTP/1.1', () => {
  test('a 504 total_timeout comes from the exchange timer at the deadline, with no sweep', async () => {
    const app = await heldApp();
    const { h, timers } = await withTimers(app.port, { totalTimeoutMs: 1_000 });
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/slow'));
    await until('the app has the request', () => app.held.length === 1, 3_000, 5);
    expect(timers.pending()).toBe(1);
    h.clock.now += 999;
    timers.fire();
    expect(c.text()).toBe('');
    h.clock.now += 1;
    timers.fire(); // no h.advance(): the listener's sweep is not run
    await until('answered', () => c.text().includes('\r\n\r\n'), 3_000, 5);
    expect(c.text()).toMatch(/^HTTP\/1\.1 504 /);
    expect(c.text()).toContain('x-tessera-error: total_timeout');
    await until('recorded', () => h.records.length === 1, 3_000, 5);
    expect(h.records[0]).toMatchObject({ status: 504, responseFlags: 'total_timeout' });
    expect(timers.pending()).toBe(0);
  });

  test('no total: no timer is armed for the exchange (the hot path pays nothing)', async () => {
    const app = await heldApp();
    const { h, timers } = await withTimers(app.port);
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/x'));
    await until('the app has the request', () => app.held.length === 1, 3_000, 5);
    expect(timers.pending()).toBe(0);
    app.held[0]!.write(reply('200 OK', 'ok'));
    await until('answered', () => c.text().endsWith('ok'), 3_000, 5);
  });

  test('the timer is cleared when the exchange ends in time', async () => {
    const app = await heldApp();
    const { h, timers } = await withTimers(app.port, { totalTimeoutMs: 1_000 });
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/x'));
    await until('the app has the request', () => app.held.length === 1, 3_000, 5);
    app.held[0]!.write(reply('200 OK', 'ok'));
    await until('answered', () => c.text().endsWith('ok'), 3_000, 5);
    expect(timers.pending()).toBe(0);
  });

  test('an answer that arrives past the deadline, before its timer ran, is not relayed: 504 total_timeout', async () => {
    const app = await heldApp();
    const { h } = await withTimers(app.port, { totalTimeoutMs: 1_000 });
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/late'));
    await until('the app has the request', () => app.held.length === 1, 3_000, 5);
    h.clock.now += 1_900; // past the total; neither the timer nor the sweep has run
    app.held[0]!.write(reply('200 OK', 'late'));
    await until('answered', () => c.text().includes('\r\n\r\n'), 3_000, 5);
    expect(c.text()).toMatch(/^HTTP\/1\.1 504 /);
    expect(c.text()).not.toContain('late');
    await until('recorded', () => h.records.length === 1, 3_000, 5);
    expect(h.records[0]).toMatchObject({ status: 504, responseFlags: 'total_timeout' });
  });

  test('body bytes that arrive past the deadline are not relayed: the exchange is cut as total_timeout', async () => {
    const app = await heldApp();
    const { h } = await withTimers(app.port, { totalTimeoutMs: 1_000 });
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/stream'));
    await until('the app has the request', () => app.held.length === 1, 3_000, 5);
    app.held[0]!.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    await until('the head and first bytes relayed', () => c.text().endsWith('abc'), 3_000, 5);
    h.clock.now += 1_000;
    app.held[0]!.write('defghij');
    await until('cut', () => c.ended(), 3_000, 5);
    expect(c.text().endsWith('abc')).toBe(true);
    expect(h.records[0]).toMatchObject({ status: 200, responseFlags: 'total_timeout' });
  });
});

describe('retries within the total', () => {
  /** Every request balanced over `ports` (the first untried endpoint first), GETs replayable; backoffs run by the test. */
  async function routed(ports: number[], totalTimeoutMs: number, backoffMs: number) {
    const retry: RetrySettings = { ...DEFAULT_ROUTING.retry, minRetriesPerSecond: 1000, backoffBaseMs: backoffMs * 2, backoffMaxMs: backoffMs * 2 };
    const now = { t: 0 };
    const balancer = new EndpointBalancer<ConnectionPool>({
      service: 'api',
      settings: { ...DEFAULT_ROUTING, slowStartMs: 0, outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } },
      nowMs: () => now.t,
      random: () => 0,
      create: (e) => new ConnectionPool({ connect: plainConnector(e.host, e.port, 2_000), maxConnections: 8, maxQueue: 8, idleTimeoutMs: 60_000, nowMs: () => now.t, timers: realTimers }),
      retire: (pool) => pool.close(),
    });
    cleanups.push(() => balancer.close());
    const endpoints: ServiceEndpoint[] = ports.map((port) => ({ host: '127.0.0.1', port, spiffeId: 'spiffe://example.test/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' }));
    balancer.update(endpoints);
    const budget = new RetryBudget(retry, () => now.t);
    const backoffs: { ms: number; run: () => void }[] = [];
    const retried: string[] = [];
    const plan = (): RequestPlan & { context: unknown } => {
      const route = ExchangeRoute.open({ service: 'api', pick: (x) => balancer.pick(x), budget, retry, headTimeoutMs: 60_000, nowMs: () => h().clock.now, random: () => 0.5, onRetry: (_s, reason) => retried.push(reason), onAttempt: () => undefined, onLatency: () => undefined })!;
      return { forward: true, add: '', route, replayBodyBytes: retry.bufferBytes, totalTimeoutMs, context: route };
    };
    const r = await withTimers(0, { defaultPool: false, plan, done: (rec, ctx) => (ctx as ExchangeRoute<ConnectionPool>).end(exchangeOutcome(rec.status, rec.error, rec.responseFlags, undefined, rec.requestComplete, rec.heldUpstream === true)), schedule: (ms, run) => backoffs.push({ ms, run }) });
    const h = () => r.h;
    return { ...r, backoffs, retried };
  }

  test('a retry whose backoff would end past the deadline is not made, nor counted: the answer in hand goes out now', async () => {
    const a = await heldApp();
    const b = await heldApp();
    const { h, backoffs, retried } = await routed([a.port, b.port], 1_000, 300);
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/r'));
    await until('a has the request', () => a.held.length === 1, 3_000, 5);
    h.clock.now += 800; // 200 ms left; the backoff is 450 ms (three quarters of its 600 ms ceiling)
    a.held[0]!.write(reply('503 Service Unavailable', 'from a'));
    // Envoy's way: no attempt that cannot finish in time; the client gets a's 503 at once, not a 504 later.
    await until('answered', () => c.text().endsWith('from a'), 3_000, 5);
    expect(c.text()).toMatch(/^HTTP\/1\.1 503 /);
    expect(backoffs).toHaveLength(0);
    expect(retried).toEqual([]);
    expect(b.held).toHaveLength(0);
  });

  test('a retry that fits the total is made', async () => {
    const a = await heldApp();
    const b = await heldApp();
    const { h, backoffs } = await routed([a.port, b.port], 1_000, 300);
    const c = await client(h.port, cleanups);
    c.socket.write(GET('/r'));
    await until('a has the request', () => a.held.length === 1, 3_000, 5);
    h.clock.now += 400;
    a.held[0]!.write(reply('503 Service Unavailable', 'from a'));
    await until('the backoff asked for', () => backoffs.length === 1, 3_000, 5);
    backoffs[0]!.run();
    await until('b has the request', () => b.held.length === 1, 3_000, 5);
    b.held[0]!.write(reply('200 OK', 'from b'));
    await until('answered', () => c.text().endsWith('from b'), 3_000, 5);
  });
});
