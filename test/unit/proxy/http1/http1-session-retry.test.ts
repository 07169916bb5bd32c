// Http1Session over a balanced service (test/helpers/http1-session-harness.ts): a real ExchangeRoute over a real
// EndpointBalancer whose resources are real ConnectionPools to raw apps on loopback. A 5xx, a reset or a malformed
// answer (before any of it reached the client) goes to
// another endpoint only when the request may be sent twice (its body held whole), a refused connection for any
// method, never past maxRetries, and the client gets the last failure when every endpoint fails.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { ServiceEndpoint } from '../../../../common/routing/service-endpoint.js';
import { DEFAULT_ROUTING, type RetrySettings } from '../../../../proxy/src/config/routing-config.js';
import type { RequestPlan } from '../../../../proxy/src/http1/http1-session-types.js';
import { EndpointBalancer } from '../../../../proxy/src/routing/endpoint-balancer.js';
import { ExchangeRoute, exchangeOutcome, type RetryReason, retryableMethod } from '../../../../proxy/src/routing/exchange-route.js';
import type { AttemptOutcome } from '../../../../proxy/src/routing/lease.js';
import { RetryBudget } from '../../../../proxy/src/routing/retry-budget.js';
import { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { type Cleanup, type Harness, HARNESS_LIMITS, http1Harness, listenLoopback, rawApp } from '../../../helpers/http1-session-harness.js';
import { oneResponse, rawHttp } from '../../../helpers/raw-http.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SERVICE = 'api.default';

/** What an app does with one whole request it read (head and body, as received); `n`: its index on this connection. */
type Answer = (s: net.Socket, request: string, n: number) => void;

interface App {
  readonly port: number;
  /** Every whole request received, byte for byte (latin1). */
  readonly requests: string[];
  /** Every byte received on any connection. */
  readonly bytes: () => string;
  readonly sockets: net.Socket[];
}

/** The end of the first whole request in `buf` (content-length or chunked), or -1 until it has all arrived. */
function requestEnd(buf: string): number {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return -1;
  const head = buf.slice(0, headEnd).toLowerCase();
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    const end = buf.indexOf('\r\n0\r\n\r\n', headEnd);
    return end < 0 ? -1 : end + 7;
  }
  const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
  return buf.length >= headEnd + 4 + length ? headEnd + 4 + length : -1;
}

async function app(answer: Answer): Promise<App> {
  const requests: string[] = [];
  let all = '';
  const a = await rawApp(cleanups, (s) => {
    let buf = '';
    let n = 0;
    s.on('data', (d: Buffer) => {
      all += d.toString('latin1');
      buf += d.toString('latin1');
      for (let end = requestEnd(buf); end > 0; end = requestEnd(buf)) {
        const request = buf.slice(0, end);
        buf = buf.slice(end);
        requests.push(request);
        answer(s, request, n++);
      }
    });
  });
  return { port: a.port, requests, bytes: () => all, sockets: a.sockets };
}

const reply = (status: string, body: string) => `HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
const answers = (status: string, body: string): Answer => (s) => s.write(reply(status, body));
/** Reads the whole request, then resets the connection without a byte of answer. */
const resets: Answer = (s) => s.resetAndDestroy();

/** A port nothing listens on: a server that was listening there and closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  const holder: Cleanup[] = [];
  const port = await listenLoopback(server, holder);
  for (const c of holder) await c();
  return port;
}

interface Routed {
  readonly h: Harness;
  readonly retries: [string, RetryReason][];
  readonly attempts: [string, string, AttemptOutcome][];
  /** Backoffs the session asked for, with their starts (when `manualBackoff`). */
  readonly backoffs: { ms: number; run: () => void }[];
  /** address ("127.0.0.1:port") of each app's endpoint, in order. */
  readonly addresses: string[];
  readonly pools: () => ConnectionPool[];
}

/**
 * A session whose every request is balanced over `ports` (in that order; the balancer's draws are 0, so with equal
 * costs the first untried endpoint is chosen: the test knows which app answers first). `retryable`: every method may
 * be replayed. `manualBackoff`: retries after a 5xx or reset wait until the test runs them.
 */
async function routed(ports: number[], o: { retry?: Partial<RetrySettings>; retryable?: boolean; manualBackoff?: boolean } = {}): Promise<Routed> {
  const retry: RetrySettings = { ...DEFAULT_ROUTING.retry, minRetriesPerSecond: 1000, backoffBaseMs: 0, ...o.retry };
  const clock = { now: 1_000_000 };
  const balancer = new EndpointBalancer<ConnectionPool>({
    service: SERVICE,
    settings: { ...DEFAULT_ROUTING, slowStartMs: 0, outlier: { ...DEFAULT_ROUTING.outlier, consecutiveFailures: 1000 } },
    nowMs: () => clock.now,
    random: () => 0,
    create: (e) => new ConnectionPool({ connect: plainConnector(e.host, e.port, 2_000), maxConnections: 8, maxQueue: 8, idleTimeoutMs: 60_000, nowMs: () => clock.now, timers: realTimers }),
    retire: (pool) => pool.close(),
  });
  cleanups.push(() => balancer.close());
  const endpoints: ServiceEndpoint[] = ports.map((port) => ({ host: '127.0.0.1', port, spiffeId: 'spiffe://example.test/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 100, source: 'self' }));
  balancer.update(endpoints);
  const retries: [string, RetryReason][] = [];
  const attempts: [string, string, AttemptOutcome][] = [];
  const backoffs: { ms: number; run: () => void }[] = [];
  const budget = new RetryBudget(retry, () => clock.now);
  const plan = (head: { method?: string }): RequestPlan & { context: unknown } => {
    const route = ExchangeRoute.open({
      service: SERVICE,
      pick: (exclude) => balancer.pick(exclude),
      budget,
      retry,
      headTimeoutMs: 60_000,
      nowMs: () => clock.now,
      random: () => 0.5,
      onRetry: (s, r) => retries.push([s, r]),
      onAttempt: (s, a, out) => attempts.push([s, a, out]),
      onLatency: () => undefined,
    });
    if (!route) return { forward: false, status: 503, code: 'no_endpoints', context: null };
    return { forward: true, add: '', route, ...(retryableMethod(head.method!, o.retryable ?? false) ? { replayBodyBytes: retry.bufferBytes } : {}), context: route };
  };
  const h = await http1Harness(0, cleanups, {
    defaultPool: false,
    plan,
    // As the listeners do: the exchange's end is its last attempt's outcome.
    done: (r, ctx) => (ctx as ExchangeRoute<ConnectionPool> | null)?.end(exchangeOutcome(r.status, r.error, r.responseFlags, undefined, r.requestComplete, r.heldUpstream === true)),
    ...(o.manualBackoff ? { schedule: (ms: number, run: () => void) => backoffs.push({ ms, run }) } : {}),
  });
  return { h, retries, attempts, backoffs, addresses: ports.map((p) => `127.0.0.1:${p}`), pools: () => [...balancer.resources()] };
}

const send = (port: number, request: string) => rawHttp({ port }, [request], { until: oneResponse, capMs: 8_000 });
const GET = (path: string) => `GET ${path} HTTP/1.1\r\nhost: api\r\n\r\n`;
const POST = (path: string, body: string) => `POST ${path} HTTP/1.1\r\nhost: api\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

describe('retry on a 5xx head', () => {
  test('a GET answered 503 goes to the other endpoint: the client sees its 200, one retry counted', async () => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await send(r.h.port, GET('/x'));
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toEqual([a.requests[0]]);
    expect(r.retries).toEqual([[SERVICE, 'status_5xx']]);
    await until('the exchange is recorded', () => r.h.records.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 200, error: undefined });
    expect(r.attempts).toEqual([
      [SERVICE, r.addresses[0], 'status_5xx'],
      [SERVICE, r.addresses[1], 'success'],
    ]);
    // The connection that answered 503 is dropped (its body unread), not leaked as leased; the other one is pooled.
    await until('the 503 connection ended', () => a.sockets[0]!.readableEnded, 3_000, 10);
    expect(r.pools().map((p) => p.stats)).toEqual([
      { open: 0, idle: 0, queued: 0 },
      { open: 1, idle: 1, queued: 0 },
    ]);
  });

  test.each(['x=1', ''])('a POST (not retryable) with body %j answered 503 is relayed as is, sent once', async (body) => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await send(r.h.port, POST('/p', body));
    expect(res.text).toBe(reply('503 Service Unavailable', 'from a'));
    expect(a.requests).toEqual([POST('/p', body)]);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
    await until('the exchange is recorded', () => r.attempts.length === 1, 3_000, 10);
    expect(r.attempts).toEqual([[SERVICE, r.addresses[0], 'status_5xx']]);
  });

  test.each([
    ['content-length', POST('/p', 'name=value&other=1')],
    ['chunked', 'POST /p HTTP/1.1\r\nhost: api\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'],
  ])('a POST on a retryable route with a small %s body is replayed whole', async (_, request) => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { retryable: true });
    const res = await send(r.h.port, request);
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(a.requests).toHaveLength(1);
    // The second endpoint receives exactly the bytes the first did: head and the whole body.
    expect(b.bytes()).toBe(a.bytes());
    expect(b.requests).toHaveLength(1);
    expect(b.requests[0]!.endsWith(request.slice(request.indexOf('\r\n\r\n') + 4))).toBe(true);
    expect(r.retries).toEqual([[SERVICE, 'status_5xx']]);
  });

  test('a body sent in several parts is replayed whole', async () => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { retryable: true });
    const body = 'abcdefghij'.repeat(30);
    const head = `PUT /p HTTP/1.1\r\nhost: api\r\ncontent-length: ${body.length}\r\n\r\n`;
    const res = await rawHttp({ port: r.h.port }, [head, 20, body.slice(0, 100), 20, body.slice(100, 250), 20, body.slice(250)], { until: oneResponse, capMs: 8_000 });
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(b.requests).toEqual([head + body]);
    expect(a.requests).toEqual([head + body]);
  });

  test('the hold limit is inclusive: a body of exactly replayBodyBytes is replayed, one byte more is not', async () => {
    const body = 'z'.repeat(64);
    for (const [limit, replayed] of [
      [64, true],
      [63, false],
    ] as const) {
      const a = await app(answers('503 Service Unavailable', 'from a'));
      const b = await app(answers('200 OK', 'from b'));
      const r = await routed([a.port, b.port], { retryable: true, retry: { bufferBytes: limit } });
      const res = await send(r.h.port, POST('/p', body));
      expect(res.text).toBe(replayed ? reply('200 OK', 'from b') : reply('503 Service Unavailable', 'from a'));
      expect(b.requests).toEqual(replayed ? [POST('/p', body)] : []);
      expect(a.requests).toHaveLength(1);
    }
  });

  test('a body larger than replayBodyBytes is not replayed, even on a retryable route (sent once)', async () => {
    const a = await app(answers('500 Internal Server Error', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { retryable: true, retry: { bufferBytes: 1_000 } });
    const body = 'q'.repeat(5_000);
    const res = await send(r.h.port, POST('/big', body));
    expect(res.text).toBe(reply('500 Internal Server Error', 'from a'));
    expect(a.requests).toEqual([POST('/big', body)]);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
  });

  test('the retry waits for its backoff: nothing reaches the next endpoint before it runs', async () => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { manualBackoff: true, retry: { backoffBaseMs: 40, backoffMaxMs: 1_000 } });
    const pending = send(r.h.port, GET('/slow'));
    await until('the backoff was asked for', () => r.backoffs.length === 1, 5_000, 10);
    // random 0.5: three quarters of the base.
    expect(r.backoffs[0]!.ms).toBe(30);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(b.bytes()).toBe('');
    r.backoffs[0]!.run();
    expect((await pending).text).toBe(reply('200 OK', 'from b'));
    expect(b.requests).toHaveLength(1);
  });
});

describe('a client that left', () => {
  test.each([
    ['answers 503', (s: net.Socket) => s.write(reply('503 Service Unavailable', 'from a'))],
    ['resets', (s: net.Socket) => s.resetAndDestroy()],
  ])('is not retried for: the endpoint %s after the client left, nothing goes to another endpoint', async (_, fail) => {
    let held: net.Socket | null = null;
    const a = await app((s) => {
      held = s;
    });
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const gone = new AbortController();
    const pending = rawHttp({ port: r.h.port }, [GET('/left')], { signal: gone.signal, capMs: 8_000 });
    await until('the first endpoint has the request', () => held !== null, 5_000, 10);
    gone.abort(); // the client leaves; the session keeps reading the answer into the void
    await pending;
    // Nothing observable says the session saw the client leave: give its 'close' a moment (if it has not, the
    // request is still the client's and a retry would be right, so this can only make the test pass wrongly).
    await new Promise((resolve) => setTimeout(resolve, 150));
    fail(held!);
    await until('the exchange is recorded', () => r.h.records.length === 1, 5_000, 10);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
    expect(r.h.records[0]!.responseFlags).toBe('downstream_closed');
  });
});

describe('retry on a reset', () => {
  test('an endpoint that resets after reading a GET: the GET goes to the other endpoint', async () => {
    const a = await app(resets);
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await send(r.h.port, GET('/r'));
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(a.requests).toEqual([GET('/r')]);
    expect(b.requests).toEqual([GET('/r')]);
    expect(r.retries).toEqual([[SERVICE, 'reset']]);
    await until('the exchange is recorded', () => r.attempts.length === 2, 3_000, 10);
    expect(r.attempts).toEqual([
      [SERVICE, r.addresses[0], 'reset'],
      [SERVICE, r.addresses[1], 'success'],
    ]);
  });

  test('a POST the endpoint read and reset gets 502 upstream_reset and was received exactly once', async () => {
    const a = await app(resets);
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await send(r.h.port, POST('/pay', 'amount=10'));
    expect(res.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(res.text).toContain('upstream_reset');
    expect(a.requests).toEqual([POST('/pay', 'amount=10')]);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
    await until('the exchange is recorded', () => r.h.records.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 502, error: 'upstream_reset', responseFlags: 'upstream_closed' });
    expect(r.attempts).toEqual([[SERVICE, r.addresses[0], 'reset']]);
  });

  test('a reset after part of the answer is never retried, even for a GET', async () => {
    const a = await app((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await rawHttp({ port: r.h.port }, [GET('/partial')], { capMs: 8_000 });
    expect(res.text.startsWith('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial')).toBe(true);
    expect(res.closedByPeer).toBe(true);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
  });
});

/** oneResponse after any interim (1xx) heads the client was sent first. */
const finalResponse = (text: string) => oneResponse(text.replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, ''));
const sendPastInterim = (port: number, request: string) => rawHttp({ port }, [request], { until: finalResponse, capMs: 8_000 });

describe('retry on a malformed answer', () => {
  // What a broken or hostile endpoint (a valid SVID, bad HTTP) sends instead of a response head.
  const MALFORMED: [string, string][] = [
    ['garbage', 'this is not http at all\r\n\r\n'],
    ['an endless header block', `HTTP/1.1 200 OK\r\n${'x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(200)}`],
    ['a 100 Continue flood', 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(20)],
    ['an unsolicited 101', 'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'],
    ['content-length with transfer-encoding', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ];

  test.each(MALFORMED)('a GET answered with %s goes to the other endpoint: the client sees its 200, one retry counted', async (_, bad) => {
    const a = await app((s) => s.write(bad));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await sendPastInterim(r.h.port, GET('/m'));
    // Interim heads of the first endpoint may have gone ahead (as before a retried 5xx); the final answer is b's.
    expect(res.text.endsWith(reply('200 OK', 'from b'))).toBe(true);
    expect(res.text).not.toContain('bad_upstream_response');
    expect(a.requests).toEqual([GET('/m')]);
    expect(b.requests).toEqual([GET('/m')]);
    expect(r.retries).toEqual([[SERVICE, 'bad_response']]);
    await until('the exchange is recorded', () => r.h.records.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 200, error: undefined });
    expect(r.attempts).toEqual([
      [SERVICE, r.addresses[0], 'bad_response'],
      [SERVICE, r.addresses[1], 'success'],
    ]);
    // The connection that spoke bad HTTP is never reused.
    await until('the bad connection ended', () => a.sockets[0]!.readableEnded || a.sockets[0]!.destroyed, 3_000, 10);
    expect(r.pools()[0]!.stats).toEqual({ open: 0, idle: 0, queued: 0 });
  });

  test('after a 100 Continue flood, the next endpoint may still send its own interim head', async () => {
    const a = await app((s) => s.write('HTTP/1.1 100 Continue\r\n\r\n'.repeat(20)));
    const b = await app((s) => s.write(`HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n${reply('200 OK', 'from b')}`));
    const r = await routed([a.port, b.port]);
    const res = await sendPastInterim(r.h.port, GET('/hints'));
    expect(res.text.endsWith(`HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n${reply('200 OK', 'from b')}`)).toBe(true);
    expect(r.retries).toEqual([[SERVICE, 'bad_response']]);
  });

  test.each(MALFORMED)('a POST (not retryable) answered with %s gets 502 bad_upstream_response and was sent once', async (_, bad) => {
    const a = await app((s) => s.write(bad));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await sendPastInterim(r.h.port, POST('/pay', 'amount=10'));
    expect(res.text).toMatch(/HTTP\/1\.1 502 /);
    expect(res.text).toContain('bad_upstream_response');
    expect(a.requests).toEqual([POST('/pay', 'amount=10')]);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
    await until('the exchange is recorded', () => r.attempts.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 502, error: 'bad_upstream_response' });
    expect(r.attempts).toEqual([[SERVICE, r.addresses[0], 'bad_response']]);
  });

  test('a POST on a retryable route answered with garbage is replayed whole on the other endpoint', async () => {
    const a = await app((s) => s.write('garbage\r\n\r\n'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { retryable: true });
    const res = await sendPastInterim(r.h.port, POST('/p', 'k=v'));
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(b.requests).toEqual([POST('/p', 'k=v')]);
    expect(r.retries).toEqual([[SERVICE, 'bad_response']]);
  });

  test('a malformed body after part of the answer went to the client is never retried, even for a GET', async () => {
    const a = await app((s) => {
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => s.write('zz-not-a-chunk-size\r\n'), 30);
    });
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port]);
    const res = await rawHttp({ port: r.h.port }, [GET('/partial')], { capMs: 8_000 });
    expect(res.text.startsWith('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')).toBe(true);
    expect(res.text).not.toContain('from b');
    expect(res.closedByPeer).toBe(true);
    expect(b.bytes()).toBe('');
    expect(r.retries).toEqual([]);
    await until('the exchange is recorded', () => r.attempts.length === 1, 3_000, 10);
    expect(r.attempts).toEqual([[SERVICE, r.addresses[0], 'bad_response']]);
  });

  test('every endpoint answering garbage: the client gets 502 bad_upstream_response after maxRetries', async () => {
    const apps = [await app((s) => s.write('junk\r\n\r\n')), await app((s) => s.write('junk\r\n\r\n')), await app((s) => s.write('junk\r\n\r\n'))];
    const r = await routed(apps.map((x) => x.port));
    const res = await sendPastInterim(r.h.port, GET('/junk'));
    expect(res.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(res.text).toContain('bad_upstream_response');
    expect(apps.map((x) => x.requests.length)).toEqual([1, 1, 1]);
    expect(r.retries).toEqual([
      [SERVICE, 'bad_response'],
      [SERVICE, 'bad_response'],
    ]);
  });
});

describe('connection failures', () => {
  test.each([
    ['in the first write', [POST('/p', 'k=v')]],
    ['arriving after the head', [POST('/p', 'k=v').slice(0, -3), 50, 'k=v']],
  ])('a refused port is retried elsewhere for a POST too, its body %s (nothing was sent)', async (_, parts) => {
    const dead = await closedPort();
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([dead, b.port]);
    const res = await rawHttp({ port: r.h.port }, parts as (string | number)[], { until: oneResponse, capMs: 8_000 });
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(b.requests).toEqual([POST('/p', 'k=v')]);
    expect(r.retries).toEqual([[SERVICE, 'connect_failed']]);
    await until('the exchange is recorded', () => r.attempts.length === 2, 3_000, 10);
    expect(r.attempts).toEqual([
      [SERVICE, `127.0.0.1:${dead}`, 'connect_failed'],
      [SERVICE, r.addresses[1], 'success'],
    ]);
  });

  test('a body larger than the hold limit still goes elsewhere after a refused connect (nothing was sent)', async () => {
    const dead = await closedPort();
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([dead, b.port], { retry: { bufferBytes: 10 } });
    const body = 'w'.repeat(3_000);
    const res = await send(r.h.port, POST('/p', body));
    expect(res.text).toBe(reply('200 OK', 'from b'));
    expect(b.requests).toEqual([POST('/p', body)]);
  });
});

describe('every endpoint failing', () => {
  test('all refuse the connection: 502 upstream_unavailable after maxRetries, no hang', async () => {
    const ports = [await closedPort(), await closedPort(), await closedPort(), await closedPort()];
    const r = await routed(ports, { retry: { maxRetries: 2 } });
    const res = await send(r.h.port, POST('/p', 'a'));
    expect(res.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(res.text).toContain('upstream_unavailable');
    expect(r.retries).toEqual([
      [SERVICE, 'connect_failed'],
      [SERVICE, 'connect_failed'],
    ]);
    await until('the exchange is recorded', () => r.h.records.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 502, error: 'upstream_unavailable' });
    // Three attempts, three different endpoints, each reported once; the fourth was never tried.
    expect(r.attempts).toEqual(ports.slice(0, 3).map((p) => [SERVICE, `127.0.0.1:${p}`, 'connect_failed']));
  });

  test('all answer 503 to a GET: the client gets the last endpoint’s 503', async () => {
    const apps = [await app(answers('503 Service Unavailable', 'from a')), await app(answers('503 Service Unavailable', 'from b')), await app(answers('503 Service Unavailable', 'from c'))];
    const r = await routed(
      apps.map((x) => x.port),
      { retry: { maxRetries: 5 } },
    );
    const res = await send(r.h.port, GET('/all'));
    expect(res.text).toBe(reply('503 Service Unavailable', 'from c'));
    expect(apps.map((x) => x.requests.length)).toEqual([1, 1, 1]);
    expect(r.retries).toHaveLength(2);
  });

  test('all reset a GET: 502 upstream_reset, each endpoint tried once', async () => {
    const apps = [await app(resets), await app(resets), await app(resets)];
    const r = await routed(apps.map((x) => x.port));
    const res = await send(r.h.port, GET('/gone'));
    expect(res.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(res.text).toContain('upstream_reset');
    expect(apps.map((x) => x.requests.length)).toEqual([1, 1, 1]);
    expect(r.retries).toEqual([
      [SERVICE, 'reset'],
      [SERVICE, 'reset'],
    ]);
  });

  test('a spent retry budget relays the first 503', async () => {
    const a = await app(answers('503 Service Unavailable', 'from a'));
    const b = await app(answers('200 OK', 'from b'));
    const r = await routed([a.port, b.port], { retry: { budgetRatio: 0, minRetriesPerSecond: 0 } });
    const res = await send(r.h.port, GET('/x'));
    expect(res.text).toBe(reply('503 Service Unavailable', 'from a'));
    expect(b.bytes()).toBe('');
  });
});

describe('stale keep-alive with a route', () => {
  test('a reused connection the endpoint had closed is replayed on the same endpoint, not counted as a retry', async () => {
    // Every connection answers its first request and silently drops the second: a keep-alive race.
    const a = await app((s, _, n) => {
      if (n === 0) s.write(reply('200 OK', 'fresh'));
      else s.destroy();
    });
    const r = await routed([a.port]); // one endpoint: a route retry would have nowhere to go
    expect((await send(r.h.port, GET('/one'))).text).toBe(reply('200 OK', 'fresh'));
    await until('the connection went back to the pool', () => r.pools()[0]!.stats.idle === 1, 3_000, 10);
    const second = await send(r.h.port, GET('/two'));
    expect(second.text).toBe(reply('200 OK', 'fresh'));
    expect(a.sockets).toHaveLength(2); // the stale one, then the replay's new one
    expect(a.requests).toEqual([GET('/one'), GET('/two'), GET('/two')]);
    expect(r.retries).toEqual([]);
    await until('both exchanges recorded', () => r.attempts.length === 2, 3_000, 10);
    expect(r.attempts.map((x) => x[2])).toEqual(['success', 'success']);
  });
});

describe('a client that stalls its own upload (audit 30c F1)', () => {
  test('is answered 408 stream_idle_timeout, and its attempt is cancelled: no failure, and no success either', async () => {
    const a = await app(answers('200 OK', 'from a'));
    const r = await routed([a.port]);
    const c = net.connect(r.h.port, '127.0.0.1');
    cleanups.push(() => c.destroy());
    let text = '';
    c.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    c.on('error', () => undefined);
    c.write('POST /upload HTTP/1.1\r\nhost: api\r\ncontent-length: 10\r\n\r\n012');
    await until('the request reached the endpoint', () => a.bytes().endsWith('012'), 3_000, 10);
    r.h.advance(HARNESS_LIMITS.streamIdleTimeoutMs + 1);
    await until('408', () => text.startsWith('HTTP/1.1 408 '), 3_000, 10);
    await until('the exchange is recorded', () => r.attempts.length === 1, 3_000, 10);
    expect(r.h.records[0]).toMatchObject({ status: 408, responseFlags: 'stream_idle_timeout', requestComplete: false });
    expect(r.attempts).toEqual([[SERVICE, r.addresses[0], 'cancelled']]);
  });
});
