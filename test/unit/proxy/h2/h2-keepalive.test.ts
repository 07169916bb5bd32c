// H2Upstream's keepalive to a peer proxy (h2-keepalive.ts) with a fake clock and the sweep called by hand, against a
// real node:http2 server behind a loopback relay that can freeze (stop reading and writing both ways, as a SIGSTOPped
// peer or a host gone: no RST ever comes). A peer that answers its PING keeps the session; a frozen one has it cut
// after keepaliveInterval + keepaliveTimeout, its open stream reset with CANCEL, the cut counted, and the next stream
// gets a new session. A peer that froze before its SETTINGS fails the stream waiting for the session. Without a
// keepalive (sessions to an app), the sweep has nothing to do. A TLS peer's reset that node:http2 misses is found by
// the sweep's socket probe.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { H2Keepalive } from '../../../../proxy/src/h2/h2-keepalive.js';
import { H2Upstream, SETTINGS_TIMEOUT_MS } from '../../../../proxy/src/h2/h2-upstream.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { h2Frame } from '../../../helpers/raw-h2-app.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const { NGHTTP2_CANCEL } = http2.constants;
const KEEPALIVE = { intervalMs: 15_000, timeoutMs: 20_000 };
const cleanup: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

/** An h2c server whose streams answer a head and a first chunk, then stay open; it counts the PINGs it answered. */
async function holdingServer(): Promise<{ port: number; sessions: () => number; pings: () => number }> {
  let sessions = 0;
  let pings = 0;
  const server = http2.createServer();
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions++;
    open.add(s);
    s.on('error', () => undefined);
    s.on('ping', () => pings++);
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200 });
    stream.write('started');
  });
  const port = await listen(server);
  cleanup.push(() => {
    for (const s of open) s.destroy();
  });
  return { port, sessions: () => sessions, pings: () => pings };
}

/** A TCP relay to `port` whose connections freeze on freeze(): nothing read or written either way from then on. */
async function freezingRelay(port: number): Promise<{ port: number; freeze: () => void }> {
  const pairs: [net.Socket, net.Socket][] = [];
  const relay = net.createServer((client) => {
    const server = net.connect(port, '127.0.0.1');
    client.pipe(server);
    server.pipe(client);
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    pairs.push([client, server]);
  });
  const relayPort = await listen(relay);
  cleanup.push(() => {
    for (const p of pairs) for (const s of p) s.destroy();
  });
  return {
    port: relayPort,
    freeze: () => {
      for (const p of pairs.splice(0)) {
        for (const s of p) {
          s.unpipe();
          s.pause();
        }
      }
    },
  };
}

function upstreamTo(port: number, time: FakeTime, cuts: { n: number }, keepalive = true): H2Upstream {
  const up = new H2Upstream({
    authority: `http://127.0.0.1:${port}`,
    nowMs: () => time.nowMs(),
    timers: time,
    ...(keepalive ? { keepalive: KEEPALIVE, onKeepaliveCut: () => cuts.n++ } : {}),
  });
  cleanup.push(() => up.close());
  return up;
}

function sessionOf(up: H2Upstream): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => up.session((err, s) => (err || !s ? reject(err ?? new Error('no session')) : resolve(s))));
}

/** A stream on `session`, tracked, whose head and first chunk have arrived. */
async function openStream(up: H2Upstream, session: http2.ClientHttp2Session): Promise<http2.ClientHttp2Stream> {
  const req = session.request({ ':path': '/hold' }, { endStream: true });
  up.track(session, req);
  req.on('error', () => undefined);
  await new Promise((r) => req.once('data', r));
  req.resume();
  return req;
}

describe('H2Upstream keepalive', () => {
  test('a peer that answers its PING keeps the session, past interval + timeout', async () => {
    const srv = await holdingServer();
    const time = new FakeTime();
    const cuts = { n: 0 };
    const up = upstreamTo(srv.port, time, cuts);
    const session = await sessionOf(up);
    const req = await openStream(up, session);
    up.sweep(); // notes what was read so far
    time.advance(KEEPALIVE.intervalMs + 1_000);
    const readBefore = session.socket.bytesRead;
    expect(up.sweep()).toBe(true);
    await until('the server answered the PING', () => srv.pings() === 1 && session.socket.bytesRead > readBefore, 5_000);
    time.advance(KEEPALIVE.timeoutMs + 1_000);
    up.sweep();
    expect(cuts.n).toBe(0);
    expect(session.destroyed).toBe(false);
    expect(req.closed).toBe(false);
    expect(up.sessions).toBe(1);
  });

  test('a frozen peer: the session is cut after interval + timeout, its stream reset with CANCEL, the next stream gets a new session', async () => {
    const srv = await holdingServer();
    const relay = await freezingRelay(srv.port);
    const time = new FakeTime();
    const cuts = { n: 0 };
    const up = upstreamTo(relay.port, time, cuts);
    const session = await sessionOf(up);
    const req = await openStream(up, session);
    up.sweep();
    relay.freeze();
    time.advance(KEEPALIVE.intervalMs + 1_000);
    up.sweep(); // the PING goes out, and nobody reads it
    time.advance(KEEPALIVE.timeoutMs - 1_000);
    up.sweep();
    expect(cuts.n).toBe(0);
    expect(session.destroyed).toBe(false);
    time.advance(2_000);
    up.sweep();
    expect(cuts.n).toBe(1);
    await until('the stream closed', () => req.closed, 5_000);
    expect(req.rstCode).toBe(NGHTTP2_CANCEL);
    await until('the session closed', () => session.destroyed && up.sessions === 0, 5_000);
    // The next stream: a new session (through a new connection of the relay), served.
    const next = await sessionOf(up);
    expect(next).not.toBe(session);
    await openStream(up, next);
    expect(srv.sessions()).toBe(2);
  });

  test('a peer that froze before its SETTINGS: the stream waiting for the session fails at the SETTINGS deadline, before interval + timeout', async () => {
    // Accepts and never writes a byte (no SETTINGS, no PING answer), never reads either.
    const silent = net.createServer((s) => {
      s.pause();
      cleanup.push(() => s.destroy());
    });
    const port = await listen(silent);
    const time = new FakeTime();
    const cuts = { n: 0 };
    const up = upstreamTo(port, time, cuts);
    let result: Error | null | undefined;
    up.session((err) => {
      result = err;
    });
    // Connected (a TCP connection is all it gets), then the sweeps.
    await until('the sweep has a session to keep alive', () => up.sweep(), 5_000);
    time.advance(SETTINGS_TIMEOUT_MS - 1);
    up.sweep();
    expect(result).toBeUndefined();
    time.advance(1);
    await until('the waiting stream failed', () => result !== undefined, 5_000);
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toContain('SETTINGS');
    // Given up before its keepalive would have cut it: not counted as a keepalive cut.
    expect(cuts.n).toBe(0);
    await until('the session is gone', () => !up.sweep(), 5_000);
  });

  test('without a keepalive (an app upstream) the sweep holds nothing and sends no PING', async () => {
    const srv = await holdingServer();
    const time = new FakeTime();
    const up = upstreamTo(srv.port, time, { n: 0 }, false);
    const session = await sessionOf(up);
    await openStream(up, session);
    expect(up.sweep()).toBe(false);
    time.advance(KEEPALIVE.intervalMs + KEEPALIVE.timeoutMs + 2_000);
    expect(up.sweep()).toBe(false);
    expect(session.destroyed).toBe(false);
  });
});

// Over TLS node:http2 misses a peer's reset that fails one of its writes (no 'error', no 'close': the socket stopped
// reading for that write). The sweep's probe asks the socket to read again, which surfaces the reset: the session
// closes at the next sweep, not a keepalive interval + timeout later, and it is not counted as a keepalive cut.
test('a TLS peer that resets while an upload to it is blocked: the next sweep closes the session and its stream', async () => {
  const ca = await TestCa.create();
  const cert = await ca.mintSvid('spiffe://example.org/peer');
  let peer: tls.TLSSocket | undefined;
  // A peer that opens every window as wide as HTTP/2 allows, then reads nothing: the upload fills the kernel's buffers.
  const server = tls.createServer({ cert: cert.chainPem, key: cert.keyPem, ALPNProtocols: ['h2'] }, (s) => {
    peer = s;
    s.on('error', () => undefined);
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(4, 0);
    settings.writeUInt32BE(2 ** 31 - 1, 2);
    const credit = Buffer.alloc(4);
    credit.writeUInt32BE(2 ** 31 - 1 - 65_535, 0);
    s.write(Buffer.concat([h2Frame(4, 0, 0, settings), h2Frame(8, 0, 0, credit)]));
    s.pause();
  });
  const port = await listen(server);
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on('error', () => undefined);
  cleanup.push(() => session.destroy());
  const time = new FakeTime();
  let dead = 0;
  const keepalive = new H2Keepalive(session, KEEPALIVE, () => time.nowMs(), () => dead++);
  const req = session.request({ ':method': 'POST', ':path': '/upload' });
  req.on('error', () => undefined);
  keepalive.track(req);
  // Written as fast as the stream drains, until it drains no more: the session's write to the socket is in progress.
  let lastDrainMs = Number.POSITIVE_INFINITY;
  const chunk = Buffer.alloc(65_536, 120);
  const pump = (): void => {
    lastDrainMs = Date.now();
    for (let n = 0; n < 1_024; n++) if (!req.write(chunk)) return void req.once('drain', pump);
  };
  session.once('remoteSettings', pump);
  await until('the upload is blocked', () => peer !== undefined && Date.now() - lastDrainMs > 200, 5_000, 10);
  // Closed with unread bytes: the kernel answers with a TCP RST.
  peer!.destroy();
  // Unseen without a probe.
  await new Promise((r) => setTimeout(r, 300));
  expect(session.closed || session.destroyed).toBe(false);
  expect(req.closed).toBe(false);
  keepalive.tick();
  await until('the session closed', () => session.destroyed && req.closed, 2_000, 10);
  expect(dead).toBe(0);
});
