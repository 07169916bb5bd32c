// The deadlines of an HTTP/2 server session (H2SessionWatch) on a real loopback h2c session with a fake clock:
// the first request's headers are due headersTimeout after the session starts, an open stream has no session
// deadline, and a session without open streams is due idleTimeout after its last stream closed, PINGs or not. And
// its premature-reset budget: a client resetting its streams before their answer is cut with GOAWAY
// ENHANCE_YOUR_CALM past the allowance, counted once; answered streams and late cancellations are not counted. A
// session nghttp2 closes for a flood or a protocol error is counted by reason.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, expect, test } from 'vitest';
import type { ProxyLimits } from '../../../../proxy/src/config/proxy-config.js';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { CUT_LINGER_MS, H2SessionWatch, refusedPastGoaway, SOCKET_PROBE_MS } from '../../../../proxy/src/listeners/h2-server-limits.js';
import { sessionErrorReason } from '../../../../shared-io/h2-session-error.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { h2Frame } from '../../../helpers/raw-h2-app.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const LIMITS = { headersTimeoutMs: 500, idleTimeoutMs: 5_000, maxConcurrentStreams: 100 } as Pick<ProxyLimits, 'headersTimeoutMs' | 'idleTimeoutMs' | 'maxConcurrentStreams'>;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function setup(holdMs: number, resets: 'cut' | 'drain' = 'cut') {
  let now = 1_000_000;
  const expired: string[] = [];
  let watch: H2SessionWatch | undefined;
  const server = http2.createServer();
  // As every listener's server is: a session error (the client destroyed at the end of a test) is not an uncaught
  // exception, which ended this file's worker in a CI run.
  guardH2Server(server, realTimers);
  let session: http2.ServerHttp2Session | undefined;
  server.on('session', (s) => {
    session = s;
    watch = new H2SessionWatch(s, LIMITS, () => now, (code) => expired.push(code), resets);
  });
  let streams = 0;
  server.on('stream', (stream) => {
    streams++;
    stream.on('error', () => undefined);
    setTimeout(() => {
      if (stream.destroyed || stream.closed) return; // reset by the client
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, holdMs).unref();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  // Destroyed on a later turn: a client session destroyed from a microtask that its own GOAWAY handling runs
  // (the drain case's NO_ERROR GOAWAY) made nghttp2 free streams twice on Node 24.20 and aborted this worker.
  closers.push(() =>
    setImmediate(() => {
      client.destroy();
      server.close();
    }),
  );
  await until('the session', () => watch !== undefined);
  return { client, watch: () => watch!, session: () => session!, expired, advance: (ms: number) => (now += ms), now: () => now, streams: () => streams };
}

function get(client: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': '/' });
    req.on('error', reject);
    req.resume();
    req.on('end', () => resolve());
    req.end();
  });
}

test('before any request: headers due headersTimeout after the session started', async () => {
  const t = await setup(0);
  expect(t.watch().deadlineMs).toBe(t.now() + 500);
  t.advance(501);
  expect(t.watch().deadlineMs).toBeLessThan(t.now());
  t.watch().expire();
  expect(t.expired).toEqual(['headers_timeout']);
  await until('the session closed', () => t.watch().closed);
});

test('a stream in flight has no session deadline; once it closes, idleTimeout runs from then', async () => {
  const t = await setup(300);
  const done = get(t.client);
  await until('the stream is open', () => t.watch().deadlineMs === Number.POSITIVE_INFINITY, 2_000, 10);
  t.advance(10_000); // far past both timeouts: an open stream is not cut by the session's deadlines
  expect(t.watch().deadlineMs).toBe(Number.POSITIVE_INFINITY);
  await done;
  await until('the stream closed', () => t.watch().deadlineMs !== Number.POSITIVE_INFINITY, 2_000, 10);
  expect(t.watch().deadlineMs).toBe(t.now() + 5_000);
  // PINGs are activity for Node's own timeout, not for this one.
  await new Promise<void>((r) => t.client.ping(() => r()));
  t.advance(5_001);
  expect(t.watch().deadlineMs).toBeLessThan(t.now());
  t.watch().expire();
  expect(t.expired).toEqual(['idle_timeout']);
});

// Audit 60b F1: node:http2 stops reading while a write is in progress; over TLS, a client that then resets the
// connection fails that write unseen by the session (no 'error', no 'close'): its streams stayed open until
// streamIdleTimeout. Over plain TCP the session sees the failed write itself.
test('a TLS client that resets its connection while the session\'s write is blocked: the next socket probe closes the session and its stream', async () => {
  let now = 1_000_000;
  let watch: H2SessionWatch | undefined;
  let streamClosed = false;
  let blocked = false;
  const ca = await TestCa.create();
  const cert = await ca.mintSvid('spiffe://example.org/server');
  // As the edge and the inbound listeners do: a TLS server hands each connection to an HTTP/2 server.
  const tlsServer = tls.createServer({ cert: cert.chainPem, key: cert.keyPem, ALPNProtocols: ['h2'] });
  const server = http2.createServer();
  guardH2Server(server, realTimers);
  tlsServer.on('secureConnection', (socket) => server.emit('connection', socket));
  server.on('session', (s) => {
    watch = new H2SessionWatch(s, LIMITS, () => now, () => undefined);
  });
  const chunk = Buffer.alloc(65_536, 120);
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.on('close', () => {
      streamClosed = true;
    });
    stream.respond({ ':status': 200 });
    // 64 MiB, written as fast as the window allows: the client's window is open, the kernel buffers fill.
    let n = 0;
    const pump = (): void => {
      while (n++ < 1_024) {
        if (!stream.write(chunk)) {
          blocked = true;
          return void stream.once('drain', pump);
        }
      }
      stream.end();
    };
    pump();
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  closers.push(() => tlsServer.close());
  const socket = tls.connect({ port: (tlsServer.address() as AddressInfo).port, host: '127.0.0.1', ALPNProtocols: ['h2'], rejectUnauthorized: false });
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('secureConnect', () => r()));
  // The preface, SETTINGS with the largest stream window, a connection WINDOW_UPDATE to match, and a GET (HPACK
  // static indexes: :method GET, :path /, :scheme http, and :authority "a"); then nothing more is read.
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(4, 0);
  settings.writeUInt32BE(2 ** 31 - 1, 2);
  const credit = Buffer.alloc(4);
  credit.writeUInt32BE(2 ** 31 - 1 - 65_535, 0);
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0, settings), h2Frame(8, 0, 0, credit), h2Frame(1, 0x5, 1, Buffer.from([0x82, 0x84, 0x86, 0x41, 0x01, 0x61]))]));
  socket.pause();
  await until('the session', () => watch !== undefined, 2_000, 10);
  const w = watch!;
  // The server writes until its socket is full (its stream waits for 'drain': a write in progress), then the client
  // resets the connection (RST: a TCP socket closed with unread bytes).
  await until('the server\'s writes are blocked', () => blocked, 5_000, 10);
  await new Promise((r) => setTimeout(r, 100));
  socket.destroy();
  // Without a probe nothing comes: the session stays open with its stream.
  await new Promise((r) => setTimeout(r, 300));
  expect(w.closed).toBe(false);
  expect(streamClosed).toBe(false);
  // A probe within SOCKET_PROBE_MS of the last does nothing; the next one closes the session.
  w.probe(now);
  now += SOCKET_PROBE_MS;
  w.probe(now);
  await until('the session closed', () => w.closed && streamClosed, 2_000, 10);
});

// Audit 60f F1: a TLS client that offers h2 and resets right after the handshake. node:http2 had written its SETTINGS
// into the dead connection; its session (no stream, so no request deadline) was cut at headersTimeout and destroyed,
// but its socket stayed open for good, holding a connection slot: 300 such clients closed an edge listener.
test('a TLS client that resets right after the handshake: its socket closes at the next probe, even after the session was destroyed', async () => {
  let watch: H2SessionWatch | undefined;
  let rawClosed = false;
  let client: net.Socket | undefined;
  const ca = await TestCa.create();
  const cert = await ca.mintSvid('spiffe://example.org/server');
  const tlsServer = tls.createServer({ cert: cert.chainPem, key: cert.keyPem, ALPNProtocols: ['h2'] });
  const server = http2.createServer();
  guardH2Server(server, realTimers);
  tlsServer.on('secureConnection', (socket) => {
    socket.once('close', () => {
      rawClosed = true;
    });
    server.emit('connection', socket);
    // The client resets (a zero linger: TCP RST) as the session writes its SETTINGS.
    client?.resetAndDestroy();
  });
  server.on('session', (s) => {
    watch = new H2SessionWatch(s, LIMITS, () => 0, () => undefined);
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  closers.push(() => tlsServer.close());
  client = net.connect((tlsServer.address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  await new Promise<void>((r) => client!.once('connect', () => r()));
  tls.connect({ socket: client, ALPNProtocols: ['h2'], rejectUnauthorized: false }).on('error', () => undefined);
  await until('the session', () => watch !== undefined, 2_000, 10);
  await new Promise((r) => setTimeout(r, 300));
  // Cut (as at headersTimeout) and destroyed, the session ends nothing: its socket stays open.
  watch!.abort();
  await new Promise((r) => setTimeout(r, 300));
  expect(rawClosed).toBe(false);
  watch!.probe(SOCKET_PROBE_MS);
  await until('the socket closed', () => rawClosed, 2_000, 10);
});

/** Opens `n` streams one after the other, each reset with CANCEL once the server saw it; `answered` ones after their head. */
async function resetEach(t: Awaited<ReturnType<typeof setup>>, n: number, answered: boolean): Promise<void> {
  for (let i = 0; i < n && !t.client.closed && !t.client.destroyed; i++) {
    await new Promise<void>((resolve) => {
      const req = t.client.request({ ':path': `/${i}` });
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      req.resume();
      if (answered) req.on('response', () => req.close(http2.constants.NGHTTP2_CANCEL));
      else setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 2);
      req.end();
    });
  }
}

test('premature resets: past the allowance (100), GOAWAY ENHANCE_YOUR_CALM and premature_reset counted once', async () => {
  const t = await setup(60_000); // the server never answers in time
  let goaway: number | undefined;
  t.client.on('goaway', (code) => {
    goaway = code;
  });
  await resetEach(t, 150, false);
  await until('the GOAWAY', () => goaway !== undefined, 2_000, 10);
  expect(goaway).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  expect(t.expired).toEqual(['premature_reset']);
  // Held open for the linger, then destroyed by the sweep (here by hand) without being counted again.
  expect(t.watch().closed).toBe(false);
  expect(t.watch().deadlineMs).toBe(t.now() + CUT_LINGER_MS);
  t.advance(CUT_LINGER_MS + 1);
  expect(t.watch().deadlineMs).toBeLessThan(t.now());
  t.watch().expire();
  await until('the session closed', () => t.watch().closed);
  expect(t.expired).toEqual(['premature_reset']);
});

test('a cut session lingers: a client still writing after the cut, reading only later, gets the GOAWAY (no TCP reset first); destroyed CUT_LINGER_MS on', async () => {
  let watch: H2SessionWatch | undefined;
  const expired: string[] = [];
  const now = 1_000_000;
  const h2 = http2.createServer();
  guardH2Server(h2, realTimers);
  h2.on('session', (s) => {
    watch = new H2SessionWatch(s, LIMITS, () => now, (code) => expired.push(code), 'cut');
  });
  h2.on('stream', (stream) => stream.on('error', () => undefined));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const socket = net.connect((h2.address() as AddressInfo).port, '127.0.0.1');
  let error = '';
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  closers.push(() => {
    socket.destroy();
    h2.close();
  });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.pause(); // reads nothing until the end
  const pairs = (from: number, n: number) =>
    Buffer.concat(Array.from({ length: n }, (_, k) => [h2Frame(1, 5, 2 * (from + k) + 1, Buffer.from([0x82, 0x84, 0x86, 0x41, 0x01, 0x78])), h2Frame(3, 0, 2 * (from + k) + 1, Buffer.from([0, 0, 0, 8]))]).flat());
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0)]));
  for (let i = 0; i < 150 && expired.length === 0; i += 5) {
    socket.write(pairs(i, 5));
    await new Promise((r) => setTimeout(r, 2));
  }
  await until('the cut', () => expired.length > 0, 5_000, 5);
  expect(expired).toEqual(['premature_reset']);
  // Still writing after the cut, as a rapid-reset client does: the server reads on, so no reset meets these writes.
  for (let i = 0; i < 10; i++) {
    socket.write(pairs(200 + 5 * i, 5));
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(error).toBe('');
  expect(watch!.closed).toBe(false);
  expect(watch!.deadlineMs).toBe(now + CUT_LINGER_MS);
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
  });
  socket.resume();
  const goaway = (): Buffer | undefined => {
    for (let at = 0; at + 9 <= buf.length; at += 9 + buf.readUIntBE(at, 3)) if (buf[at + 3] === 7 && at + 17 <= buf.length) return buf.subarray(at + 9, at + 17);
    return undefined;
  };
  await until('the GOAWAY read', () => goaway() !== undefined, 5_000, 5);
  expect(goaway()!.readUInt32BE(4)).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  expect(goaway()!.readUInt32BE(0)).toBeLessThan(2 * 200 + 1); // no stream after the cut was taken
  // The sweep past the linger destroys it, without counting it again.
  watch!.expire();
  await until('the session closed', () => watch!.closed);
  expect(expired).toEqual(['premature_reset']);
});

test('premature resets on a drained session (an inbound peer\'s): GOAWAY NO_ERROR past the allowance, a stream in flight runs to its end', async () => {
  const t = await setup(60_000, 'drain');
  let goaway: number | undefined;
  t.client.on('goaway', (code) => {
    goaway = code;
  });
  // A stream of another client of the peer, in flight across the drain (the app answers it in 60 s: closed here by hand).
  const inFlight = t.client.request({ ':path': '/long' });
  inFlight.on('error', () => undefined);
  inFlight.resume();
  await resetEach(t, 150, false);
  await until('the GOAWAY', () => goaway !== undefined, 2_000, 10);
  expect(goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
  expect(t.expired).toEqual(['premature_reset']);
  expect(inFlight.destroyed).toBe(false);
  expect(t.watch().closed).toBe(true); // closing: no new stream, the open one may finish
});

test('premature resets: streams reset after their head, or a second after they began, are not counted', async () => {
  const answered = await setup(0);
  await resetEach(answered, 150, true);
  expect(answered.expired).toEqual([]);
  expect(answered.watch().closed).toBe(false);
  const late = await setup(60_000);
  // The fake clock moves 1 s per stream: each reset is an ordinary cancellation.
  for (let i = 0; i < 150; i++) {
    const req = late.client.request({ ':path': `/${i}` });
    req.on('error', () => undefined);
    req.resume();
    req.end();
    await until('the server saw it', () => late.streams() === i + 1, 2_000, 1);
    late.advance(1_000);
    await new Promise<void>((resolve) => {
      req.on('close', () => resolve());
      req.close(http2.constants.NGHTTP2_CANCEL);
    });
  }
  expect(late.expired).toEqual([]);
  expect(late.watch().closed).toBe(false);
});

// nghttp2 closes a session itself on a flood or a connection-level protocol error; the watch counts it by reason.
test.each<[string, (frames: typeof h2Frame) => Buffer, string]>([
  ['a SETTINGS flood', (f) => Buffer.concat(Array.from({ length: 20_000 }, () => f(4, 0, 0))), 'http2_flood'],
  ['a PING flood', (f) => Buffer.concat(Array.from({ length: 20_000 }, () => f(6, 0, 0, Buffer.alloc(8)))), 'http2_flood'],
  ['CONTINUATION after CONTINUATION without end', (f) => Buffer.concat([f(1, 0, 1, Buffer.from([0x82, 0x84, 0x86])), ...Array.from({ length: 20_000 }, () => f(9, 0, 1))]), 'http2_flood'],
  ['DATA on stream 0', (f) => f(0, 0, 0, Buffer.from('x')), 'http2_protocol_error'],
  // Node's bound on frames it refuses: 1,100 requests with an upper-case field name, each refused.
  ['more than 1,000 refused frames (malformed headers)', (f) => Buffer.concat(Array.from({ length: 1_100 }, (_, i) => f(1, 5, 2 * i + 1, Buffer.from([0x82, 0x84, 0x86, 0x41, 0x01, 0x78, 0, 1, 0x58, 1, 0x31])))), 'http2_flood'],
])('%s: the session is closed and counted once as %s', async (_name, make, reason) => {
  const expired: string[] = [];
  const server = http2.createServer();
  guardH2Server(server, realTimers);
  server.on('session', (s) => void new H2SessionWatch(s, LIMITS, () => 0, (code) => expired.push(code)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume();
  closers.push(() => {
    socket.destroy();
    server.close();
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0), make(h2Frame)]));
  await until('the session closed', () => socket.destroyed || socket.readableEnded, 5_000);
  await until('counted', () => expired.length > 0);
  expect(expired).toEqual([reason]);
});

// Audit 62m F1: node:http2's server.close() closes every session (GOAWAY NO_ERROR) before the listener's drain asks the
// watch, which then found the session closed and never marked the GOAWAY: streams past it were forwarded after all.
test('a drain after the server closed the session itself still marks its GOAWAY: a stream above its last id is refused', async () => {
  const { client, watch, session } = await setup(60_000, 'drain');
  const first = client.request({ ':path': '/a' });
  first.on('error', () => undefined);
  await until('the stream is open', () => (session().state.lastProcStreamID ?? 0) >= 1);
  let refusedWith = -1;
  const stream = (id: number) => ({ id, session: session(), destroyed: false, closed: false, close: (code: number) => (refusedWith = code) }) as unknown as http2.ServerHttp2Stream;
  session().close(); // what node:http2's server.close() does to each of its sessions, before the listener's drain
  watch().drain();
  expect(refusedPastGoaway(stream(1))).toBe(false);
  expect(refusedPastGoaway(stream(3))).toBe(true);
  expect(refusedWith).toBe(http2.constants.NGHTTP2_REFUSED_STREAM);
  first.close();
});

test('errors that are not the client\'s protocol faults are not counted', () => {
  expect(sessionErrorReason(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBeUndefined();
  expect(sessionErrorReason(new Error('premature_reset'))).toBeUndefined();
  expect(sessionErrorReason(Object.assign(new Error('Protocol error'), { code: 'ERR_HTTP2_ERROR' }))).toBe('http2_protocol_error');
});
