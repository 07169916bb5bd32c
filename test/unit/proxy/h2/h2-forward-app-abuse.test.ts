// forwardStream against an app that misbehaves on HTTP/2: interim heads without end (1xx frames are not
// flow-controlled, so they are bounded by count), and a body cut short by RST_STREAM(NO_ERROR), which node:http2
// reports as an end: a body shorter than its content-length reaches the client as a reset, never as complete.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { type ForwardResult, forwardStream } from '../../../../proxy/src/h2/h2-forward.js';
import { H2Upstream } from '../../../../proxy/src/h2/h2-upstream.js';
import { MAX_INTERIM_HEADS } from '../../../../proxy/src/http1/http1-head.js';
import { h2Frame, hpackBlock, rawH2App } from '../../../helpers/raw-h2-app.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

interface Outcome {
  readonly status: number;
  readonly hints: number;
  readonly data: string;
  readonly rstCode: number;
  readonly result: ForwardResult;
}

/** client → front (forwardStream) → H2Upstream → the app on `appPort`; one request, what the client saw. */
async function through(appPort: number, method = 'GET'): Promise<Outcome> {
  const upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${appPort}` });
  closers.push(() => upstream.close());
  const results: ForwardResult[] = [];
  const front = http2.createServer();
  guardH2Server(front, realTimers);
  const sessions = new Set<http2.ServerHttp2Session>();
  front.on('session', (s) => sessions.add(s));
  closers.push(() => {
    for (const s of sessions) s.destroy();
  });
  front.on('stream', (stream, headers) => forwardStream(stream, { ':method': headers[':method'], ':path': headers[':path'] }, upstream, false, { requestMs: 60_000, idleMs: 0, replayBytes: 0, nowMs: () => performance.now(), timers: realTimers }, (r) => results.push(r)));
  const client = http2.connect(`http://127.0.0.1:${await listen(front as unknown as net.Server)}`);
  client.on('error', () => undefined);
  closers.push(() => client.destroy());
  const seen = await new Promise<Omit<Outcome, 'result'>>((resolve) => {
    const req = client.request({ ':method': method, ':path': '/x' });
    let status = 0;
    let hints = 0;
    let data = '';
    req.on('headers', () => hints++);
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: Buffer) => {
      data += d;
    });
    req.on('error', () => undefined);
    req.on('close', () => resolve({ status, hints, data, rstCode: req.rstCode ?? 0 }));
  });
  await until('the exchange reported', () => results.length === 1);
  return { ...seen, result: results[0]! };
}

/** A node:http2 app; each stream's RST code once it closed (0 = clean). */
async function app(handler: (stream: http2.ServerHttp2Stream) => void): Promise<{ port: number; ends: number[] }> {
  const ends: number[] = [];
  const server = http2.createServer();
  server.on('session', (s) => {
    s.on('error', () => undefined);
    closers.push(() => s.destroy());
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.on('close', () => ends.push(stream.rstCode ?? 0));
    handler(stream);
  });
  return { port: await listen(server as unknown as net.Server), ends };
}

/** `n` 103 heads, then 200 "ok" a moment later. */
const hinting = (n: number) => (stream: http2.ServerHttp2Stream) => {
  for (let i = 0; i < n; i++) stream.additionalHeaders({ ':status': 103, link: `</${i}.css>; rel=preload` });
  setTimeout(() => {
    if (stream.closed || stream.destroyed) return;
    stream.respond({ ':status': 200 });
    stream.end('ok');
  }, 100);
};

/** A raw app: HEADERS 200 (with `contentLength` if given), DATA "part" without END_STREAM, then RST_STREAM(NO_ERROR). */
function resettingApp(contentLength?: number): Promise<number> {
  const block = hpackBlock([[':status', '200'], ...(contentLength === undefined ? [] : [['content-length', String(contentLength)] as const])]);
  return listen(
    rawH2App((s, id) => {
      closers.push(() => s.destroy());
      s.write(h2Frame(1, 0x4, id, block));
      s.write(h2Frame(0, 0, id, Buffer.from('part')));
      setTimeout(() => s.write(h2Frame(3, 0, id, Buffer.alloc(4))), 30);
    }),
  );
}

describe('interim heads from the app', () => {
  test(`${MAX_INTERIM_HEADS} 103s reach the client before the final head`, async () => {
    const a = await app(hinting(MAX_INTERIM_HEADS));
    expect(await through(a.port)).toMatchObject({ status: 200, hints: MAX_INTERIM_HEADS, data: 'ok', rstCode: 0 });
  });

  test('one more is a 502 bad_upstream_response; the app stream is cancelled', async () => {
    const a = await app(hinting(MAX_INTERIM_HEADS + 1));
    const o = await through(a.port);
    expect(o).toMatchObject({ status: 502, hints: MAX_INTERIM_HEADS, data: 'bad_upstream_response\n' });
    expect(o.result).toMatchObject({ status: 502, error: 'bad_upstream_response' });
    await until('the app stream closed', () => a.ends.length === 1);
    expect(a.ends).toEqual([NGHTTP2_CANCEL]);
  });

  test('interim heads past 16 KiB together are a 502, however few', async () => {
    const a = await app((stream) => {
      for (let i = 0; i < 3; i++) stream.additionalHeaders({ ':status': 103, link: `<${'x'.repeat(7_000)}>; rel=preload` });
      setTimeout(() => {
        if (stream.closed || stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 100);
    });
    const o = await through(a.port);
    expect(o).toMatchObject({ status: 502, hints: 2 });
  });

  test('without end: the flood is cut at the bound, not relayed', async () => {
    const a = await app((stream) => {
      const flood = setInterval(() => {
        if (stream.closed || stream.destroyed) return clearInterval(flood);
        stream.additionalHeaders({ ':status': 103, link: '</a.css>' });
      }, 1);
      stream.on('close', () => clearInterval(flood));
    });
    const o = await through(a.port);
    expect(o).toMatchObject({ status: 502, hints: MAX_INTERIM_HEADS });
  });
});

describe('a body cut by the app with RST_STREAM(NO_ERROR)', () => {
  test('shorter than its content-length: the client gets the bytes and a reset, not a complete response', async () => {
    const o = await through(await resettingApp(10));
    expect(o).toMatchObject({ status: 200, data: 'part', rstCode: NGHTTP2_INTERNAL_ERROR });
    expect(o.result).toMatchObject({ status: 200, responseFlags: 'upstream_closed' });
  });

  test('a whole body with its content-length ends cleanly; a HEAD answer is not measured against it', async () => {
    const a = await app((stream) => {
      stream.respond({ ':status': 200, 'content-length': '2' });
      stream.end('ok');
    });
    expect(await through(a.port)).toMatchObject({ status: 200, data: 'ok', rstCode: 0 });
    const h = await app((stream) => {
      stream.respond({ ':status': 200, 'content-length': '100' });
      stream.end();
    });
    expect(await through(h.port, 'HEAD')).toMatchObject({ status: 200, data: '', rstCode: 0 });
  });
});
