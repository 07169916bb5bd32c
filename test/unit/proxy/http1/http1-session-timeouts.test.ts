// The three time limits of an HTTP/1.1 exchange (docs/configuration.md): limits.requestTimeout runs until the
// response head only, a stream that keeps moving is never cut by it; limits.streamIdleTimeout ends an exchange
// with no bytes either way; a listener's `timeout` is a total. What is recorded is what happened: the status the
// client really got and the reason (responseFlags) when cut. The clock is stepped; sockets are real.
import type * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { type Cleanup, client, HARNESS_LIMITS, type HarnessOptions, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GET = 'GET /events HTTP/1.1\r\nHost: app\r\n\r\n';
const STREAM_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n';
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;

/** An app that answers with a stream head and then sends what the test tells it to. */
async function streamingApp() {
  let up: net.Socket | undefined;
  const app = await rawApp(cleanups, (s) =>
    s.once('data', () => {
      up = s;
      s.write(STREAM_HEAD);
    }),
  );
  return { app, send: (s: string) => up!.write(s), ready: () => up !== undefined };
}

/** A client through a harness session to a streaming app, once the stream's head has arrived. */
async function openStream(o: HarnessOptions = {}) {
  const { app, send, ready } = await streamingApp();
  const p = await http1Harness(app.port, cleanups, o);
  const c = await client(p.port, cleanups);
  c.socket.write(GET);
  await until('the stream head', () => ready() && c.text().includes('event-stream'), 5_000, 10);
  return { app, send, p, c };
}

describe('HTTP/1.1 exchange time limits', () => {
  test('a stream that keeps moving runs far past limits.requestTimeout and ends whole', async () => {
    const { send, p, c } = await openStream();
    // Ten events, 0.9 × requestTimeout apart: 9 request timeouts in all, never a pause of streamIdleTimeout.
    for (let i = 0; i < 10; i++) {
      p.advance(HARNESS_LIMITS.requestTimeoutMs * 0.9);
      send(chunk(`data: ${i}\n\n`));
      await until(`event ${i}`, () => c.text().includes(`data: ${i}\n`), 3_000, 5);
    }
    send('0\r\n\r\n');
    await until('recorded', () => p.records.length === 1, 3_000, 10);
    expect(c.ended()).toBe(false);
    // The content only: the events, without the head and the chunk framing (as HTTP/2 counts DATA).
    expect(p.records[0]).toMatchObject({ status: 200, bytesOut: Array.from({ length: 10 }, (_, i) => `data: ${i}\n\n`).join('').length });
    expect(p.records[0]!.responseFlags).toBeUndefined();
    expect(p.records[0]!.error).toBeUndefined();
    expect(p.rejected).toEqual([]);
  });

  test('a stream with no bytes for streamIdleTimeout is cut; the record keeps the 200 that was sent', async () => {
    const { app, send, p, c } = await openStream();
    p.advance(HARNESS_LIMITS.streamIdleTimeoutMs - 100);
    send(chunk('data: still here\n\n'));
    await until('the event', () => c.text().includes('still here'), 3_000, 5);
    p.advance(HARNESS_LIMITS.streamIdleTimeoutMs - 100);
    expect(c.ended()).toBe(false); // the event restarted the idle clock
    p.advance(200);
    await until('the client is cut', () => c.ended(), 3_000, 10);
    expect(p.records).toHaveLength(1);
    expect(p.records[0]).toMatchObject({ status: 200, error: 'stream_idle_timeout', responseFlags: 'stream_idle_timeout', bytesOut: 'data: still here\n\n'.length });
    expect(p.rejected).toEqual(['stream_idle_timeout']);
    await until('the upstream connection is dropped', () => app.sockets[0]!.destroyed || app.sockets[0]!.readableEnded, 3_000, 10);
  });

  test("a listener's total timeout cuts even a moving stream; before the head it is a 504", async () => {
    const { send, p, c } = await openStream({ totalTimeoutMs: 2_000 });
    for (let i = 0; i < 2; i++) {
      p.advance(900);
      send(chunk(`data: ${i}\n\n`));
      await until(`event ${i}`, () => c.text().includes(`data: ${i}\n`), 3_000, 5);
    }
    p.advance(300);
    await until('cut at the total', () => c.ended(), 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 200, responseFlags: 'total_timeout' });

    const silent = await rawApp(cleanups, () => undefined);
    const q = await http1Harness(silent.port, cleanups, { totalTimeoutMs: 500, limits: { requestTimeoutMs: 10_000 } });
    const d = await client(q.port, cleanups);
    d.socket.write(GET);
    await until('the app has the request', () => silent.sockets.length === 1, 3_000, 10);
    q.advance(501);
    await until('504', () => d.text().startsWith('HTTP/1.1 504 '), 3_000, 10);
    expect(d.text()).toContain('x-tessera-error: total_timeout');
    expect(q.records[0]).toMatchObject({ status: 504, responseFlags: 'total_timeout' });
  });

  test('an upload that keeps moving is not cut by requestTimeout; one that stalls gets 408 stream_idle_timeout', async () => {
    const app = await rawApp(cleanups, (s) =>
      s.on('data', (d: Buffer) => {
        if (d.toString('latin1').endsWith('9')) s.write('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
      }),
    );
    const p = await http1Harness(app.port, cleanups);
    const c = await client(p.port, cleanups);
    c.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\ncontent-length: 10\r\n\r\n');
    for (let i = 0; i < 10; i++) {
      p.advance(HARNESS_LIMITS.requestTimeoutMs * 0.9);
      c.socket.write(String(i));
      await new Promise((r) => setTimeout(r, 20));
    }
    await until('201', () => c.text().startsWith('HTTP/1.1 201 '), 3_000, 10);
    expect(p.records[0]).toMatchObject({ status: 201 });

    const stalled = await client(p.port, cleanups);
    stalled.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\ncontent-length: 10\r\n\r\n012');
    await until('the body has started', () => app.sockets.length >= 1 && p.sessions.length === 2, 3_000, 10);
    await new Promise((r) => setTimeout(r, 50));
    p.advance(HARNESS_LIMITS.streamIdleTimeoutMs + 1);
    await until('408', () => stalled.text().startsWith('HTTP/1.1 408 '), 3_000, 10);
    expect(stalled.text()).toContain('x-tessera-error: stream_idle_timeout');
    expect(p.records[1]).toMatchObject({ status: 408, responseFlags: 'stream_idle_timeout' });
  });

  // Audit 61b F1: a body trickled a byte at a time restarted streamIdleTimeout at each byte and held its pool slot as
  // long as it trickled (257 uploads from one peer held an app's pool). limits.minRequestBodyRate paces it.
  describe('limits.minRequestBodyRate', () => {
    const PACE = { minRequestBodyRate: 100, headersTimeoutMs: 1_000 };
    const appAnswering = () =>
      rawApp(cleanups, (s) =>
        s.on('data', (d: Buffer) => {
          if (d.toString('latin1').endsWith('!')) s.write('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
        }),
      );

    test('a body behind its pace after the grace gets 408 request_body_timeout, counted; the app connection is dropped', async () => {
      const app = await appAnswering();
      const p = await http1Harness(app.port, cleanups, { limits: PACE });
      const c = await client(p.port, cleanups);
      c.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\ncontent-length: 1000\r\n\r\n0');
      await until('the app has the request', () => app.sockets.length === 1, 3_000, 10);
      // A byte every 500 ms: 2 bytes a second against 100, within the grace (1 s) and past it.
      for (let i = 0; i < 2; i++) {
        p.advance(500);
        c.socket.write('1');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(c.text()).toBe('');
      p.advance(500);
      await until('408', () => c.text().startsWith('HTTP/1.1 408 '), 3_000, 10);
      expect(c.text()).toContain('x-tessera-error: request_body_timeout');
      expect(p.records[0]).toMatchObject({ status: 408, responseFlags: 'request_body_timeout' });
      expect(p.rejected).toEqual(['request_body_timeout']);
      await until('the upstream connection is dropped', () => app.sockets[0]!.destroyed || app.sockets[0]!.readableEnded, 3_000, 10);
    });

    test('a body at its pace runs past the grace and is answered', async () => {
      const app = await appAnswering();
      const p = await http1Harness(app.port, cleanups, { limits: PACE });
      const c = await client(p.port, cleanups);
      c.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\ncontent-length: 601\r\n\r\n');
      // 60 bytes every 500 ms: 120 a second, for 5 s.
      for (let i = 0; i < 10; i++) {
        p.advance(500);
        c.socket.write('x'.repeat(60));
        await new Promise((r) => setTimeout(r, 10));
      }
      c.socket.write('!');
      await until('201', () => c.text().startsWith('HTTP/1.1 201 '), 3_000, 10);
      expect(p.rejected).toEqual([]);
    });

    test('once the app has answered, a body still being sent is not judged by its pace (a stream both ways)', async () => {
      const app = await rawApp(cleanups, (s) => s.once('data', () => s.write(STREAM_HEAD)));
      const p = await http1Harness(app.port, cleanups, { limits: { ...PACE, streamIdleTimeoutMs: 60_000 } });
      const c = await client(p.port, cleanups);
      c.socket.write('POST /both-ways HTTP/1.1\r\nHost: app\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n');
      await until('the answer head', () => c.text().includes('event-stream'), 3_000, 10);
      for (let i = 0; i < 8; i++) {
        p.advance(500);
        c.socket.write('1\r\nb\r\n');
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(c.ended()).toBe(false);
      expect(p.rejected).toEqual([]);
    });

    // Audit 61i F1: the client waits for the app's 100 before its body; an app that took 12 s to send it had the
    // upload cut at the grace (10 s), 408, the client logged as a slow one.
    test('Expect: 100-continue: no pace while the client waits for the 100; from the 100 relayed, the body is paced', async () => {
      let up: net.Socket | undefined;
      let heads = 0;
      const app = await rawApp(cleanups, (s) => {
        s.on('data', (d: Buffer) => {
          const text = d.toString('latin1');
          if (text.includes('POST /upload')) [up, heads] = [s, heads + 1];
          if (text.endsWith('!')) s.write('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
        });
      });
      const p = await http1Harness(app.port, cleanups, { limits: { ...PACE, streamIdleTimeoutMs: 60_000 } });
      const c = await client(p.port, cleanups);
      c.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\nexpect: 100-continue\r\ncontent-length: 61\r\n\r\n');
      await until('the app has the head', () => heads === 1, 3_000, 10);
      // The app sends early hints (a 103 does not end the client's wait: audit 61j F3), then checks what it must for
      // 5 s (five graces) before it answers 100.
      up!.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n');
      await until('the 103 relayed', () => c.text().startsWith('HTTP/1.1 103 '), 3_000, 10);
      for (let i = 0; i < 10; i++) p.advance(500);
      await new Promise((r) => setTimeout(r, 30));
      expect(c.text()).not.toContain('408');
      expect(p.rejected).toEqual([]);
      up!.write('HTTP/1.1 100 Continue\r\n\r\n');
      await until('the 100 relayed', () => c.text().includes('HTTP/1.1 100 '), 3_000, 10);
      // At its pace from there: answered.
      c.socket.write('x'.repeat(60));
      await new Promise((r) => setTimeout(r, 20));
      p.advance(500);
      c.socket.write('!');
      await until('201', () => c.text().includes('HTTP/1.1 201 '), 3_000, 10);
      expect(p.rejected).toEqual([]);
      // A client that gets its 100 and then sends nothing is paced from the 100: cut after the grace.
      const d = await client(p.port, cleanups);
      d.socket.write('POST /upload HTTP/1.1\r\nHost: app\r\nexpect: 100-continue\r\ncontent-length: 61\r\n\r\n');
      await until('the app has the second head', () => heads === 2, 3_000, 10);
      up!.write('HTTP/1.1 100 Continue\r\n\r\n');
      await until('the second 100 relayed', () => d.text().startsWith('HTTP/1.1 100 '), 3_000, 10);
      p.advance(PACE.headersTimeoutMs + 1);
      await until('408', () => d.text().includes('HTTP/1.1 408 '), 3_000, 10);
      expect(p.rejected).toEqual(['request_body_timeout']);
    });

    test('a body the proxy holds back (waiting for a connection of a full pool) is not judged by its pace', async () => {
      const app = await appAnswering();
      const p = await http1Harness(app.port, cleanups, { limits: { ...PACE, streamIdleTimeoutMs: 60_000 }, pool: { maxConnections: 1, maxQueue: 8 } });
      // The pool's one connection is taken by an upload that keeps its pace.
      const first = await client(p.port, cleanups);
      first.socket.write('POST /a HTTP/1.1\r\nHost: app\r\ncontent-length: 1000\r\n\r\n');
      await until('the app has the first', () => app.sockets.length === 1, 3_000, 10);
      const second = await client(p.port, cleanups);
      second.socket.write('POST /b HTTP/1.1\r\nHost: app\r\ncontent-length: 2\r\n\r\nx');
      await until('both sessions', () => p.sessions.length === 2, 3_000, 10);
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 8; i++) {
        p.advance(500);
        first.socket.write('y'.repeat(60));
        await new Promise((r) => setTimeout(r, 10));
      }
      // 4 s, one byte: far behind its pace, but it never had a connection to send it on.
      expect(second.text()).toBe('');
      expect(p.rejected).toEqual([]);
    });
  });
});
