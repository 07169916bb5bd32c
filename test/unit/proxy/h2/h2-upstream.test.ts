// H2Upstream against a real HTTP/2 server on loopback that advertises a small SETTINGS_MAX_CONCURRENT_STREAMS:
// long-lived streams past the peer's cap get a new session instead of waiting behind the open ones.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { H2Upstream } from '../../../../proxy/src/h2/h2-upstream.js';
import { until } from '../../../helpers/until.js';

const CAP = 2;
let server: http2.Http2Server | undefined;
let upstream: H2Upstream | undefined;
const serverSessions = new Set<http2.ServerHttp2Session>();

afterEach(async () => {
  upstream?.close();
  for (const s of serverSessions) s.destroy();
  serverSessions.clear();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** An h2c server whose streams stay open (headers sent, no end) until the test closes the server. */
async function holdingServer(): Promise<{ port: number; open: () => number; sessions: () => number }> {
  let open = 0;
  let sessions = 0;
  server = http2.createServer({ settings: { maxConcurrentStreams: CAP } });
  server.on('session', (s) => {
    sessions++;
    serverSessions.add(s);
    s.on('error', () => undefined);
  });
  server.on('stream', (stream) => {
    open++;
    stream.on('close', () => open--);
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200 });
    stream.write('started');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, open: () => open, sessions: () => sessions };
}

function request(up: H2Upstream): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    up.session((err, session) => {
      if (err || !session) return reject(err ?? new Error('no session'));
      const req = session.request({ ':path': '/hold', ':method': 'GET' }, { endStream: true });
      up.track(session, req);
      req.on('error', () => undefined);
      req.resume(); // as h2-forward pipes it: a stream whose data nobody reads never emits 'close'
      resolve(req);
    });
  });
}

describe('H2Upstream', () => {
  test('streams past the peer stream cap open another session, and all are served at once', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ authority: `http://127.0.0.1:${srv.port}` });
    const first = await request(upstream);
    // The peer's SETTINGS must have arrived before the cap can be known: wait for the first response.
    await new Promise((r) => first.once('response', r));
    const rest: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < 2 * CAP; i++) rest.push(await request(upstream));
    await until('srv.open() === 2 * CAP + 1', () => srv.open() === 2 * CAP + 1, 5_000);
    expect(srv.open()).toBe(2 * CAP + 1);
    expect(upstream.sessions).toBe(Math.ceil((2 * CAP + 1) / CAP));
    expect(srv.sessions()).toBe(upstream.sessions);
    for (const r of [first, ...rest]) r.close();
  });

  test('a closed stream frees room: the next request reuses an open session', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ authority: `http://127.0.0.1:${srv.port}` });
    const a = await request(upstream);
    await new Promise((r) => a.once('response', r));
    const b = await request(upstream);
    await until('srv.open() === 2', () => srv.open() === 2, 5_000);
    b.close();
    await until('srv.open() === 1', () => srv.open() === 1, 5_000);
    const c = await request(upstream);
    await until('srv.open() === 2', () => srv.open() === 2, 5_000);
    expect(upstream.sessions).toBe(1);
    a.close();
    c.close();
  });
});
