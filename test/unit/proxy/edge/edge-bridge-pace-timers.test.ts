// The edge's HTTP/2 → HTTP/1.1 bridge paces a request body (limits.minRequestBodyRate), and only a body: a stream
// whose HEADERS carried END_STREAM (a GET) still reads readableEnded false when the bridge starts, and each one made a
// pace and armed its timer (audit 62e F2). A real node:http2 server and client, a real node:http app; the bridge's
// timers counted by their delay (the grace is a value no other timer here has).

import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { forwardStreamToHttp1 } from '../../../../proxy/src/edge/edge-h2-to-h1.js';

const GRACE_MS = 12_345;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

const listen = (s: http.Server | http2.Http2Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

test('GETs arm no body-pace timer; a POST with a body does', async () => {
  const armed: number[] = [];
  const timers = {
    setTimeout: (fn: () => void, ms: number) => {
      armed.push(ms);
      return setTimeout(fn, ms);
    },
    clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
  };
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const appPort = await listen(app);
  const agent = new http.Agent({ keepAlive: true });
  const up = { agent, route: { upstream: { host: '127.0.0.1', port: appPort } }, authority: 'app' } as unknown as Parameters<typeof forwardStreamToHttp1>[2];
  const edge = http2.createServer();
  const statuses: number[] = [];
  edge.on('stream', (stream, headers) => {
    forwardStreamToHttp1(stream, headers, up, { target: '/', add: {}, timeouts: { requestMs: 30_000, idleMs: 0, nowMs: () => Date.now(), timers, replayBytes: 0, bodyRate: { bytesPerSecond: 240, graceMs: GRACE_MS } } } as Parameters<typeof forwardStreamToHttp1>[3], (r) => statuses.push(r.status));
  });
  const edgePort = await listen(edge);
  const client = http2.connect(`http://127.0.0.1:${edgePort}`);
  closers.push(() => client.close(), () => edge.close(), () => app.close(), () => agent.destroy());
  const ask = (method: string, body?: string) =>
    new Promise<void>((resolve) => {
      const r = client.request({ ':method': method, ':path': '/' }, { endStream: body === undefined });
      if (body !== undefined) r.end(body);
      r.resume();
      r.on('close', () => resolve());
    });
  await Promise.all(Array.from({ length: 20 }, () => ask('GET')));
  expect(statuses.filter((s) => s === 200)).toHaveLength(20);
  expect(armed.filter((ms) => ms === GRACE_MS)).toEqual([]);
  await ask('POST', 'a body');
  expect(statuses.at(-1)).toBe(200);
  expect(armed.filter((ms) => ms === GRACE_MS).length).toBeGreaterThan(0);
});
