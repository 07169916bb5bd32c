// Http1Session on loopback sockets (test/helpers/http1-session-harness.ts): real client, real pool, an app of raw
// bytes, the clock in the test's hands. Pipelining, an early answer with an unread body, the stale keep-alive
// replay, 1xx, a client leaving mid-response, a full queue (503, matched by error code), a late answer after the
// request timeout, and the exchange state that must not leak from one request into the next.
import type * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { type Cleanup, HARNESS_LIMITS, client, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { oneResponse, rawHttp } from '../../../helpers/raw-http.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;
const ok = (body: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

/** Answers every request head it reads with its target, in order, on each connection. */
function answerWithTarget(s: net.Socket): void {
  let buf = '';
  s.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
      const target = buf.slice(0, end).split(' ')[1]!;
      buf = buf.slice(end + 4);
      s.write(ok(target));
    }
  });
}

/** An app that holds every request until `release()`, then answers each with "late". */
async function heldApp() {
  const held: net.Socket[] = [];
  let answered = 0;
  const app = await rawApp(cleanups, (s) => s.on('data', () => held.push(s)));
  return {
    port: app.port,
    received: () => held.length,
    answered: () => answered,
    release: () => {
      for (const s of held.splice(0)) {
        if (!s.destroyed) s.write(ok('late'), () => answered++);
        else answered++;
      }
    },
  };
}

describe('Http1Session', () => {
  test('pipelined requests are answered in order, each recorded with its own status and target', async () => {
    const app = await rawApp(cleanups, answerWithTarget);
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/one') + GET('/two') + GET('/three'));
    await until('three responses', () => (c.text().match(/HTTP\/1\.1 200/g) ?? []).length === 3, 5_000, 10);
    await until('the bodies', () => c.text().endsWith('/three'), 2_000, 10);
    expect(c.text().replace(/HTTP\/1\.1 200 OK\r\ncontent-length: \d+\r\n\r\n/g, '|')).toBe('|/one|/two|/three');
    expect(p.records.map((r) => [r.target, r.status, r.responseFlags])).toEqual([
      ['/one', 200, undefined],
      ['/two', 200, undefined],
      ['/three', 200, undefined],
    ]);
    expect(app.sockets.length).toBe(1); // one pooled upstream connection carried all three
  });

  test('an early answer with the request body unread closes both connections (the rest of the body is no request)', async () => {
    const app = await rawApp(cleanups, (s) => s.once('data', () => s.write('HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n')));
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    // The "body" holds what would parse as a second request if the session lost track of it.
    c.socket.write(`POST /upload HTTP/1.1\r\nHost: app\r\ncontent-length: 100000\r\n\r\n${GET('/smuggled')}`);
    await until('the 413 and the close', () => c.text().startsWith('HTTP/1.1 413') && c.ended(), 5_000, 10);
    expect(c.text()).not.toContain('/smuggled');
    await until('the upstream connection is discarded', () => app.sockets[0]!.destroyed || app.sockets[0]!.readableEnded, 3_000, 10);
    expect(p.pool.stats.idle).toBe(0);
    expect(p.records.map((r) => [r.status, r.target])).toEqual([[413, '/upload']]);
  });

  test('a stale keep-alive connection is replayed once for an idempotent request, never for a POST', async () => {
    // Every upstream connection answers its first request and silently drops the second: a keep-alive race.
    const app = await rawApp(cleanups, (s) => {
      let n = 0;
      s.on('data', () => {
        if (n++ === 0) s.write(ok('fresh'));
        else s.destroy();
      });
    });
    const p = await http1Harness(app.port, cleanups);
    const first = await rawHttp({ port: p.port }, [GET('/a')], { until: oneResponse, capMs: 5_000 });
    expect(first.text.endsWith('fresh')).toBe(true);
    await until('the connection went back to the pool', () => p.pool.stats.idle === 1, 3_000, 10);
    const replayed = await rawHttp({ port: p.port }, [GET('/b')], { until: oneResponse, capMs: 5_000 });
    expect(replayed.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(app.sockets.length).toBe(2); // the stale one, then the replay's new one
    await until('back in the pool', () => p.pool.stats.idle === 1, 3_000, 10);
    const post = await rawHttp({ port: p.port }, ['POST /c HTTP/1.1\r\nHost: app\r\ncontent-length: 0\r\n\r\n'], { until: oneResponse, capMs: 5_000 });
    expect(post.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(post.text).toContain('upstream_reset');
    expect(p.records.at(-1)).toMatchObject({ status: 502, error: 'upstream_reset', responseFlags: 'upstream_closed' });
  });

  test('1xx responses pass through before the final one; an HTTP/1.0 client gets none', async () => {
    const app = await rawApp(cleanups, answerWithInterims);
    const p = await http1Harness(app.port, cleanups);
    const r11 = await rawHttp({ port: p.port }, [GET('/x')], { until: (t) => t.endsWith('done'), capMs: 5_000 });
    expect(r11.text).toBe(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n${ok('done')}`);
    const r10 = await rawHttp({ port: p.port }, ['GET /y HTTP/1.0\r\n\r\n'], { until: (t) => t.endsWith('done'), capMs: 5_000 });
    expect(r10.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r10.text).not.toContain(' 100 ');
    expect(p.records.map((r) => r.status)).toEqual([200, 200]);
  });

  test('interim heads past MAX_INTERIM_BYTES together are a 502, though fewer than MAX_INTERIM_HEADS', async () => {
    const hint = `HTTP/1.1 103 Early Hints\r\nlink: <${'x'.repeat(6_000)}>\r\n\r\n`;
    const app = await rawApp(cleanups, (s) => s.on('data', () => s.write(`${hint.repeat(3)}${ok('done')}`)));
    const p = await http1Harness(app.port, cleanups);
    const r = await rawHttp({ port: p.port }, [GET('/x')], { until: (t) => / 502 /.test(t) && t.endsWith('\n'), capMs: 5_000 });
    expect(r.text).toMatch(/HTTP\/1\.1 502 [\s\S]*bad_upstream_response/);
    expect(r.text).not.toContain('done');
  });

  test('a client that leaves mid-response: the record says what was sent and who left, the upstream connection is dropped', async () => {
    const app = await rawApp(cleanups, (s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n')));
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/stream'));
    await until('the first chunk', () => c.text().includes('first'), 5_000, 10);
    c.socket.destroy();
    await until('the exchange is recorded', () => p.records.length === 1, 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 200, responseFlags: 'downstream_closed' });
    // The content sent: neither the head nor the chunk framing is counted (bytesOut counts what HTTP/2 sends as DATA).
    expect(p.records[0]!.bytesOut).toBe('first'.length);
    expect(c.text()).toBe(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n`);
    await until('the app sees its connection closed', () => app.sockets[0]!.destroyed || app.sockets[0]!.readableEnded, 3_000, 10);
    expect(p.pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
  });

  test('a client that leaves before a small answer: it is read into the void, the pooled connection survives, 499 recorded', async () => {
    const app = await heldApp();
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/slow'));
    await until('the app holds the request', () => app.received() === 1, 3_000, 10);
    c.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(p.records).toHaveLength(0); // still waiting for the answer
    app.release();
    await until('recorded', () => p.records.length === 1, 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 499, responseFlags: 'downstream_closed', bytesOut: 0 });
    await until('the connection is back in the pool', () => p.pool.stats.idle === 1, 3_000, 10);
  });

  test('a client that leaves before a stream or a large answer: the upstream connection goes too', async () => {
    const app = await rawApp(cleanups, (s) => s.once('data', () => setTimeout(() => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n'), 100)));
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/big'));
    await until('the app has the request', () => app.sockets.length === 1, 3_000, 10);
    c.socket.destroy();
    await until('recorded when the head shows a body not worth reading', () => p.records.length === 1, 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 499, responseFlags: 'downstream_closed' });
    await until('the app connection is closed', () => app.sockets[0]!.destroyed || app.sockets[0]!.readableEnded, 3_000, 10);
    expect(p.pool.stats).toEqual({ open: 0, idle: 0, queued: 0 });
  });

  test('a full upstream queue answers 503 upstream_unavailable, not 502', async () => {
    const app = await heldApp();
    const p = await http1Harness(app.port, cleanups, { pool: { maxConnections: 1, maxQueue: 0 } });
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
    const p = await http1Harness(app.port, cleanups);
    const reply = rawHttp({ port: p.port }, [GET('/slow')], { until: oneResponse, capMs: 5_000 });
    await until('the app holds the request', () => app.received() === 1, 3_000, 10);
    p.advance(1_001);
    const r = await reply;
    expect(r.text).toMatch(/^HTTP\/1\.1 504 /);
    expect(p.records.map((x) => [x.status, x.error, x.responseFlags])).toEqual([[504, 'request_timeout', 'request_timeout']]);
    app.release(); // the late answer: it once reached a session with no exchange and threw
    await until('the late answer was written', () => app.answered() === 1, 3_000, 10);
    await new Promise((res) => setTimeout(res, 50));
    const next = rawHttp({ port: p.port }, [GET('/next')], { until: oneResponse, capMs: 5_000 });
    await until('a new upstream connection carries the next request', () => app.received() === 1, 3_000, 10);
    app.release();
    const n = await next;
    expect(n.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(n.text.endsWith('late')).toBe(true);
  });

  test('a 204 reaches the client without the Transfer-Encoding or Content-Length an app gave it (it has no body), and the next answer is whole', async () => {
    const app = await rawApp(cleanups, (s) =>
      s.on('data', (d: Buffer) => {
        const t = d.toString('latin1');
        if (t.includes('/te')) s.write('HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n');
        else if (t.includes('/cl')) s.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
        else s.write(ok('next'));
      }),
    );
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/te'));
    await until('the first answer', () => c.text().includes('\r\n\r\n'), 5_000, 10);
    c.socket.write(GET('/cl'));
    await until('the second answer', () => (c.text().match(/\r\n\r\n/g) ?? []).length === 2, 5_000, 10);
    c.socket.write(GET('/next'));
    await until('the third answer', () => c.text().endsWith('next'), 5_000, 10);
    expect(c.text()).toBe(`HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n${ok('next')}`);
  });

  test('nothing of one exchange reaches the next: bytes, status and flags are per request', async () => {
    const app = await rawApp(cleanups, (s) =>
      s.on('data', (d: Buffer) => {
        if (d.toString('latin1').includes('/big')) s.write(ok('x'.repeat(5_000)));
        else s.write('HTTP/1.1 204 No Content\r\n\r\n');
      }),
    );
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write(`POST /big HTTP/1.1\r\nHost: app\r\ncontent-length: 3\r\n\r\nabc`);
    await until('the big answer', () => c.text().length >= 5_000, 5_000, 10);
    c.socket.write(GET('/small'));
    await until('two records', () => p.records.length === 2, 5_000, 10);
    const [big, small] = p.records;
    // Bodies only: 3 in, 5,000 out for the POST; nothing for a bodyless GET answered 204 (heads are not counted).
    expect(big).toMatchObject({ target: '/big', status: 200, bytesIn: 3, bytesOut: 5_000 });
    expect(small).toMatchObject({ target: '/small', status: 204, bytesOut: 0, bytesIn: 0 });
    expect(small!.startMs).toBeGreaterThanOrEqual(big!.endMs);
  });
});

function answerWithInterims(s: net.Socket): void {
  s.on('data', () => s.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n${ok('done')}`));
}

describe('Http1Session options for the edge', () => {
  test('responseHeaders go on every final response, forwarded (replacing the upstream\'s) or local, not on 1xx', async () => {
    const app = await rawApp(cleanups, (s) => s.on('data', () => s.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\ncontent-length: 2\r\n\r\nok`)));
    const hsts = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' };
    const p = await http1Harness(app.port, cleanups, { responseHeaders: hsts, plan: (h) => (h.target === '/denied' ? { forward: false, status: 403, code: 'authz_denied' } : { forward: true, add: '' }) });
    const c = await client(p.port, cleanups);
    c.socket.write(GET('/a'));
    await until('the answer', () => c.text().endsWith('ok'), 5_000, 10);
    expect(c.text()).toBe('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n\r\nok');
    const denied = await rawHttp({ port: p.port }, [GET('/denied')], { until: oneResponse, capMs: 5_000 });
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 [\s\S]*\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n/);
    const bad = await rawHttp({ port: p.port }, ['GET / HTTP/1.1\r\n\r\n'], { capMs: 5_000 });
    expect(bad.text).toMatch(/^HTTP\/1\.1 400 [\s\S]*strict-transport-security/);
  });

  test('firstHeadTimeout: a silent new connection is cut as headers_timeout; without it, it waits for idleTimeout', async () => {
    const app = await rawApp(cleanups, answerWithTarget);
    const strict = await http1Harness(app.port, cleanups, { firstHeadTimeout: true });
    const c = await client(strict.port, cleanups);
    await until('the session exists', () => strict.sessions.length === 1, 3_000, 10);
    strict.advance(HARNESS_LIMITS.headersTimeoutMs + 1);
    await until('cut', () => c.ended(), 3_000, 10);
    expect(strict.rejected).toEqual(['headers_timeout']);

    const lenient = await http1Harness(app.port, cleanups, { limits: { idleTimeoutMs: HARNESS_LIMITS.headersTimeoutMs * 3 } });
    const d = await client(lenient.port, cleanups);
    await until('the session exists', () => lenient.sessions.length === 1, 3_000, 10);
    lenient.advance(HARNESS_LIMITS.headersTimeoutMs + 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(d.ended()).toBe(false);
    d.socket.write(GET('/still'));
    await until('served', () => d.text().endsWith('/still'), 3_000, 10);
  });

  test('no pool anywhere: a plan that names none is answered 502, one that names one is forwarded', async () => {
    const app = await rawApp(cleanups, answerWithTarget);
    let named: ConnectionPool | undefined;
    const p = await http1Harness(app.port, cleanups, { defaultPool: false, plan: (h) => (h.target === '/routed' ? { forward: true, add: '', pool: named! } : { forward: true, add: '' }) });
    named = p.pool;
    const r1 = await rawHttp({ port: p.port }, [GET('/nowhere')], { until: oneResponse, capMs: 5_000 });
    expect(r1.text).toMatch(/^HTTP\/1\.1 502 [\s\S]*upstream_unavailable/);
    const r2 = await rawHttp({ port: p.port }, [GET('/routed')], { until: oneResponse, capMs: 5_000 });
    expect(r2.text.endsWith('/routed')).toBe(true);
    expect(p.records.map((r) => [r.target, r.status])).toEqual([
      ['/nowhere', 502],
      ['/routed', 200],
    ]);
  });
});

