// Http1Session on loopback sockets, with the pool, the app and the clock under the test's control: a full upstream
// queue answers 503 (matched by error code, not by class name), and an exchange cut by its request timeout leaves
// nothing for the app's late answer to land on (that used to throw from the socket's data handler).
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Http1Session } from '../../../../proxy/src/http1/http1-session.js';
import type { ExchangeRecord, SessionLimits } from '../../../../proxy/src/http1/http1-session-types.js';
import { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { oneResponse, rawHttp } from '../../../helpers/raw-http.js';
import { until } from '../../../helpers/until.js';

const LIMITS: SessionLimits = { maxHeaderBytes: 8_192, maxHeaders: 50, headersTimeoutMs: 5_000, idleTimeoutMs: 5_000, requestTimeoutMs: 1_000 };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

/** An app that holds every request until `release()`, then answers each with "late". */
async function heldApp(): Promise<{ port: number; received: () => number; release: () => void; answered: () => number }> {
  const held: net.Socket[] = [];
  let answered = 0;
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', () => held.push(s));
  });
  const port = await listen(server);
  cleanups.push(() => {
    for (const s of held) s.destroy();
  });
  return {
    port,
    received: () => held.length,
    answered: () => answered,
    release: () => {
      for (const s of held.splice(0)) {
        if (!s.destroyed) s.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate', () => answered++);
        else answered++;
      }
    },
  };
}

/** A proxy of one Http1Session per connection, over a pool the test sizes; the clock is the test's. */
async function proxy(appPort: number, pool: { maxConnections: number; maxQueue: number }) {
  const clock = { now: 1_000_000 };
  const records: ExchangeRecord[] = [];
  const sessions: Http1Session[] = [];
  const upstream = new ConnectionPool({ connect: plainConnector('127.0.0.1', appPort, 2_000), ...pool, idleTimeoutMs: 60_000, nowMs: () => clock.now });
  cleanups.push(() => upstream.close());
  const server = net.createServer((socket) => {
    sessions.push(
      new Http1Session(socket, {
        limits: LIMITS,
        responseLimits: { maxHeaderBytes: 8_192, maxHeaders: 50 },
        pool: upstream,
        nowMs: () => clock.now,
        hooks: { plan: () => ({ forward: true, add: '' }), done: (r) => records.push(r), rejected: () => undefined },
      }),
    );
  });
  cleanups.push(() => {
    for (const s of sessions) s.drain();
  });
  return { port: await listen(server), clock, records, sessions };
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;

describe('Http1Session', () => {
  test('a full upstream queue answers 503 upstream_unavailable, not 502', async () => {
    const app = await heldApp();
    const p = await proxy(app.port, { maxConnections: 1, maxQueue: 0 });
    const first = rawHttp({ port: p.port }, [GET('/first')], { until: oneResponse, capMs: 5_000 });
    await until('the first request holds the only upstream connection', () => app.received() === 1, 3_000, 10);
    const second = await rawHttp({ port: p.port }, [GET('/second')], { until: oneResponse, capMs: 3_000 });
    expect(second.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(second.text).toContain('upstream_unavailable');
    app.release();
    expect((await first).text).toMatch(/^HTTP\/1\.1 200 /);
  });

  test('a late answer after the request timeout is discarded, the connection is not reused, nothing throws', async () => {
    const app = await heldApp();
    const p = await proxy(app.port, { maxConnections: 4, maxQueue: 4 });
    const reply = rawHttp({ port: p.port }, [GET('/slow')], { until: oneResponse, capMs: 5_000 });
    await until('the app holds the request', () => app.received() === 1, 3_000, 10);
    p.clock.now += LIMITS.requestTimeoutMs + 1;
    for (const s of p.sessions) if (s.deadlineMs < p.clock.now) s.expire();
    const r = await reply;
    expect(r.text).toMatch(/^HTTP\/1\.1 504 /);
    expect(p.records.map((x) => x.error)).toEqual(['request_timeout']);
    app.release(); // the late answer: before the fix it reached a session with no exchange and threw
    await until('the late answer was written', () => app.answered() === 1, 3_000, 10);
    await new Promise((res) => setTimeout(res, 50));
    const next = rawHttp({ port: p.port }, [GET('/next')], { until: oneResponse, capMs: 5_000 });
    await until('a new upstream connection carries the next request', () => app.received() === 1, 3_000, 10);
    app.release();
    const n = await next;
    expect(n.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(n.text.endsWith('late')).toBe(true);
  });
});
