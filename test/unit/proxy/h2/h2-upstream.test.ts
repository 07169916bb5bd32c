// H2Upstream against a real HTTP/2 server on loopback that advertises a small SETTINGS_MAX_CONCURRENT_STREAMS:
// long-lived streams past the peer's cap get a new session instead of waiting behind the open ones; after an
// identity change or the peer certificate's expiry new streams get a new session while the old one drains; an
// idle session is closed from the client side. A burst that waited for a session spreads over sessions at the cap
// (ours when the peer allows more), and a session the peer refused a stream on (ENHANCE_YOUR_CALM) takes no new one;
// the retry of such a stream asks for a fresh session. No more sessions than maxSessions (limits.upstreamPoolSize).
// A session that has opened maxStreamsPerSession streams (its stream ids near their end), or whose ids ran out, takes
// no new one.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { H2Upstream } from '../../../../proxy/src/h2/h2-upstream.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const CAP = 2;
let server: http2.Http2Server | http2.Http2SecureServer | undefined;
let upstream: H2Upstream | undefined;
const serverSessions = new Set<http2.ServerHttp2Session>();

afterEach(async () => {
  upstream?.close();
  for (const s of serverSessions) s.destroy();
  serverSessions.clear();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/**
 * An h2c (or h2 over TLS) server whose streams stay open (headers sent, no end) until the test closes the server.
 * `perSession`: the streams each session was sent, in the order the sessions came.
 */
async function holdingServer(secure?: http2.SecureServerOptions, cap = CAP): Promise<{ port: number; open: () => number; started: () => number; sessions: () => number; closedSessions: () => number; perSession: () => number[] }> {
  const perSession = new Map<http2.Http2Session, number>();
  let open = 0;
  let started = 0;
  let sessions = 0;
  let closedSessions = 0;
  server = secure ? http2.createSecureServer({ ...secure, settings: { maxConcurrentStreams: cap } }) : http2.createServer({ settings: { maxConcurrentStreams: cap } });
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions++;
    perSession.set(s, 0);
    serverSessions.add(s);
    s.on('error', () => undefined);
    s.on('close', () => closedSessions++);
  });
  server.on('stream', (stream) => {
    perSession.set(stream.session!, (perSession.get(stream.session!) ?? 0) + 1);
    open++;
    started++;
    stream.on('close', () => open--);
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200 });
    stream.write('started');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, open: () => open, started: () => started, sessions: () => sessions, closedSessions: () => closedSessions, perSession: () => [...perSession.values()] };
}

/** The cap `stream`'s session's peer allows now. */
const upstreamCap = (stream: http2.ClientHttp2Stream) => stream.session?.remoteSettings.maxConcurrentStreams;

function request(up: H2Upstream, fresh = false): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    up.session((err, session) => {
      if (err || !session) return reject(err ?? new Error('no session'));
      let req: http2.ClientHttp2Stream;
      try {
        req = session.request({ ':path': '/hold', ':method': 'GET' }, { endStream: true });
      } catch (e) {
        return reject(e); // a session handed out closed (ERR_HTTP2_GOAWAY_SESSION)
      }
      up.track(session, req);
      req.on('error', () => undefined);
      req.resume(); // as h2-forward pipes it: a stream whose data nobody reads never emits 'close'
      resolve(req);
    }, fresh);
  });
}

describe('H2Upstream', () => {
  test('streams past the peer stream cap open another session, and all are served at once', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
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

  // Audit 61b: an app that accepts and never speaks HTTP/2 held each request until limits.requestTimeout (60 s).
  test('an app that sends no SETTINGS: the streams waiting for its session fail at the SETTINGS deadline', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => {
      s.pause();
      s.on('error', () => undefined);
      held.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const time = new FakeTime();
    let connected = 0;
    const up = new H2Upstream({ nowMs: () => time.nowMs(), timers: time, authority: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, settingsTimeoutMs: 2_000, onConnected: () => connected++ });
    let result: Error | null | undefined;
    up.session((err) => {
      result = err;
    });
    await until('connected', () => connected === 1, 5_000, 10);
    time.advance(1_999);
    expect(result).toBeUndefined();
    time.advance(1);
    await until('the waiting stream failed', () => result !== undefined, 5_000, 10);
    expect(result?.message).toContain('SETTINGS');
    up.close();
    for (const h of held) h.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  // Audit 61d F1: tessera_upstream_connections_opened_total never counted the connections to the app.
  // Audit 61b: an app that allows no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0) had every request queued until
  // limits.requestTimeout, each waiter opening another session up to the pool's bound.
  test('a new session whose peer allows no stream: the streams waiting for it fail at its SETTINGS deadline, no other session is opened', async () => {
    const srv = await holdingServer(undefined, 0);
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxSessions: 4, settingsTimeoutMs: 300 });
    const outcomes = await Promise.all([request(upstream), request(upstream), request(upstream)].map((p) => p.then(() => 'stream', (e: Error) => e.message)));
    expect(outcomes).toEqual(Array(3).fill('upstream allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)'));
    expect(srv.sessions()).toBe(1);
    expect(upstream.sessions).toBe(0);
  });

  // Audit 62f F1: RFC 9113 lets a server allow no stream for a short while; failing such a session at once made an app
  // that starts each connection at 0 and raises its cap a moment later unreachable.
  test('a new session whose peer allows no stream at first and one a moment later: the waiting streams are served on it', async () => {
    const srv = await holdingServer(undefined, 0);
    server!.on('session', (s: http2.ServerHttp2Session) => setTimeout(() => s.settings({ maxConcurrentStreams: 10 }), 50));
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxSessions: 4, settingsTimeoutMs: 5_000 });
    const streams = await Promise.all([request(upstream), request(upstream), request(upstream)]);
    await until('all three started', () => srv.started() === 3, 5_000);
    expect([srv.sessions(), upstream.sessions]).toEqual([1, 1]);
    for (const r of streams) r.close();
  });

  test('a session whose peer lowers its cap to 0 and no other may open: a new stream fails at once instead of queuing there', async () => {
    const srv = await holdingServer(undefined, 4);
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxSessions: 1 });
    const first = await request(upstream);
    await new Promise((r) => first.once('response', r));
    const [peer] = serverSessions;
    peer!.settings({ maxConcurrentStreams: 0 });
    await until('the new SETTINGS arrived', () => [...serverSessions].length === 1 && upstreamCap(first) === 0, 5_000);
    await expect(request(upstream)).rejects.toThrow('upstream allows no streams');
    expect(srv.started()).toBe(1);
    first.close();
  });

  test('onConnected is told of each plain session connected (the app connections counted)', async () => {
    const srv = await holdingServer();
    let connected = 0;
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, onConnected: () => connected++ });
    const all = await Promise.all(Array.from({ length: 2 * CAP + 1 }, () => request(upstream!)));
    await until('every stream open', () => srv.open() === 2 * CAP + 1, 5_000);
    expect(connected).toBe(srv.sessions());
    expect(connected).toBe(3);
    for (const r of all) r.close();
  });

  test('a burst that waits for the first session spreads over sessions at the peer cap, none held past it', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
    // All asked before any session exists: each picks again once one is ready (before, all went to the first,
    // and nghttp2 held those past the cap until a stream there ended).
    const all = await Promise.all(Array.from({ length: 3 * CAP }, () => request(upstream!)));
    await until('srv.open() === 3 * CAP', () => srv.open() === 3 * CAP, 5_000);
    expect(upstream.sessions).toBe(3);
    for (const r of all) r.close();
  });

  test('at most maxSessions sessions (limits.upstreamPoolSize): a burst past them waits in the least busy session, none opens another; a stream that ends lets the next one through', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxSessions: 2 });
    const all = await Promise.all(Array.from({ length: 3 * CAP }, () => request(upstream!)));
    await until('srv.open() === 2 * CAP', () => srv.open() === 2 * CAP, 5_000);
    // Before, the bound was 32 sessions whatever upstreamPoolSize said: a third session opened here.
    expect([upstream.sessions, srv.sessions()]).toEqual([2, 2]);
    expect(srv.started()).toBe(2 * CAP);
    all[0]!.close();
    await until('a waiting stream started in the room freed', () => srv.started() === 2 * CAP + 1, 5_000);
    expect(srv.sessions()).toBe(2);
    for (const r of all) r.close();
  });

  test('closed (its endpoint removed): asked for a session, it answers with the pool-closed error; one connecting at the close is never handed out', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
    const asked = new Promise<unknown>((resolve) => upstream!.session((err) => resolve(err)));
    upstream.close(); // while the first session is still connecting
    expect(await asked).toMatchObject({ code: 'TESSERA_ERR_UPSTREAM_POOL_CLOSED' });
    expect(upstream.sessions).toBe(0);
    await until('the connecting session closed', () => srv.closedSessions() === srv.sessions(), 5_000);
    const later = await new Promise<unknown>((resolve) => upstream!.session((err) => resolve(err)));
    expect(later).toMatchObject({ code: 'TESSERA_ERR_UPSTREAM_POOL_CLOSED' });
  });

  test('at most maxConcurrentStreams streams a session when the peer allows more', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxConcurrentStreams: 1 });
    const all = await Promise.all(Array.from({ length: 3 }, () => request(upstream!)));
    await until('srv.open() === 3', () => srv.open() === 3, 5_000);
    expect(upstream.sessions).toBe(3);
    for (const r of all) r.close();
  });

  test('a session the peer refused a stream on (ENHANCE_YOUR_CALM) takes no new stream, and closes once its streams end', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
    const a = await request(upstream);
    await new Promise((r) => a.once('response', r));
    const first = a.session as http2.ClientHttp2Session;
    upstream.refused(first);
    expect(upstream.sessions).toBe(0);
    const b = await request(upstream);
    expect(b.session).not.toBe(first);
    await until('srv.open() === 2', () => srv.open() === 2, 5_000);
    expect(srv.sessions()).toBe(2);
    a.close();
    await until('the refused session closed', () => first.closed || first.destroyed, 5_000);
    await until('srv.closedSessions() === 1', () => srv.closedSessions() === 1, 5_000);
    b.close();
  });

  test('a fresh session is asked for (a retry after ENHANCE_YOUR_CALM): a new one though an open one has room, also when one is connecting', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
    const a = await request(upstream);
    await new Promise((r) => a.once('response', r));
    const b = await request(upstream, true);
    expect(b.session).not.toBe(a.session);
    // Two at once: the second waits for the connect the first started and is handed that new session.
    const [c, d] = await Promise.all([request(upstream, true), request(upstream, true)]);
    expect(c.session).toBe(d.session);
    expect(new Set([a.session, b.session, c.session]).size).toBe(3);
    await until('srv.open() === 4', () => srv.open() === 4, 5_000);
    expect(srv.sessions()).toBe(3);
    for (const r of [a, b, c, d]) r.close();
  });

  test('a closed stream frees room: the next request reuses an open session', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
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

  test('after an identity change new streams go to a new session; the old one drains its open stream, then closes', async () => {
    const srv = await holdingServer();
    let generation = 1;
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, generation: () => generation });
    const old = await request(upstream);
    await new Promise((r) => old.once('response', r));
    generation = 2;
    const fresh = await request(upstream);
    await until('both streams open', () => srv.open() === 2, 5_000);
    expect(srv.sessions()).toBe(2);
    expect(upstream.sessions).toBe(1);
    expect(old.closed).toBe(false); // drained, not destroyed
    expect(srv.closedSessions()).toBe(0);
    old.close();
    await until('the old session closed once its stream ended', () => srv.closedSessions() === 1, 5_000);
    const again = await request(upstream);
    await until('the new session took the next stream', () => srv.open() === 2, 5_000);
    expect(srv.sessions()).toBe(2);
    for (const r of [fresh, again]) r.close();
  });

  test('a session with no stream for idleMs is closed from the client side; a stream keeps it open', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, idleMs: 300 });
    const a = await request(upstream);
    await new Promise((r) => a.once('response', r));
    await new Promise((r) => setTimeout(r, 700)); // a quiet but open stream: the session stays
    expect(upstream.sessions).toBe(1);
    expect(srv.closedSessions()).toBe(0);
    a.close();
    await until('the idle session closed', () => srv.closedSessions() === 1 && upstream!.sessions === 0, 5_000);
  });

  // Outside audit 61b F5: a session whose stream ids ran out (2^30 streams) stayed open with none, picked first, and
  // every later stream to the upstream failed.
  test('a session that has opened maxStreamsPerSession streams takes no new one: the next goes to a new session, and it closes once its streams end', async () => {
    const srv = await holdingServer(undefined, 100);
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxStreamsPerSession: 5 });
    const held: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < 5; i++) held.push(await request(upstream));
    const first = held[0]!.session as http2.ClientHttp2Session;
    expect(held.every((r) => r.session === first)).toBe(true);
    const sixth = await request(upstream);
    expect(sixth.session).not.toBe(first);
    await until('six streams open', () => srv.open() === 6, 5_000);
    expect(srv.perSession()).toEqual([5, 1]);
    // Retired, not cut: its five streams run on.
    expect([first.destroyed, srv.closedSessions(), upstream.sessions]).toEqual([false, 0, 1]);
    for (const r of held) r.close();
    await until('the spent session closed once its streams ended', () => first.destroyed && srv.closedSessions() === 1, 5_000);
    // One at a time (each ended before the next): the second session takes four more, a third the rest.
    for (let i = 0; i < 6; i++) {
      const r = await request(upstream);
      await new Promise((done) => r.once('response', done));
      r.close();
      await new Promise((done) => r.once('close', done));
    }
    sixth.close();
    expect(srv.perSession()).toEqual([5, 5, 2]);
  });

  test('fresh sessions asked for in a burst past maxStreamsPerSession: the one that connected takes its last streams, the rest get another', async () => {
    const srv = await holdingServer(undefined, 100);
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}`, maxStreamsPerSession: 5 });
    const all = await Promise.all(Array.from({ length: 7 }, () => request(upstream!, true)));
    await until('seven streams open', () => srv.open() === 7, 5_000);
    expect(srv.perSession()).toEqual([5, 2]);
    for (const r of all) r.close();
  });

  test('a stream that gets ERR_HTTP2_OUT_OF_STREAMS (its session out of stream ids) retires the session: the next stream goes to a new one', async () => {
    const srv = await holdingServer();
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `http://127.0.0.1:${srv.port}` });
    const a = await request(upstream);
    const spent = a.session as http2.ClientHttp2Session;
    // Its next stream takes the last id (2^31-1), as if 2^30 streams had gone before.
    (spent as unknown as { setNextStreamID(id: number): void }).setNextStreamID(2 ** 31 - 1);
    const last = await request(upstream);
    expect(last.session).toBe(spent);
    await new Promise((done) => last.once('response', done));
    for (const r of [a, last]) r.close();
    await until('both streams ended', () => srv.open() === 0 && a.closed && last.closed, 5_000);
    expect(spent.destroyed).toBe(false);
    const failed = await request(upstream); // on `spent`, the only session (a failed stream's is not kept to see)
    await until('the stream past the last id failed', () => failed.destroyed, 5_000);
    expect((failed.errored as NodeJS.ErrnoException | null)?.code).toBe('ERR_HTTP2_OUT_OF_STREAMS');
    const next = await request(upstream);
    expect(next.destroyed).toBe(false);
    expect(next.session).not.toBe(spent);
    await until('the next stream reached the server', () => srv.open() === 1, 5_000);
    await until('the spent session closed', () => spent.destroyed, 5_000);
    expect([srv.sessions(), upstream.sessions]).toEqual([2, 1]);
    next.close();
  });

  test('once the peer certificate has expired, new streams go to a new session (a fresh handshake)', async () => {
    const ca = await TestCa.create({ trustDomain: 'example.org' });
    const now = Date.now();
    let svid = await ca.mintSvid('spiffe://example.org/ns/default/sa/api', { notBefore: new Date(now - 60_000), notAfter: new Date(now + 1_500) });
    const srv = await holdingServer({ cert: svid.chainPem, key: svid.keyPem });
    const open = (done: (err: Error | null, socket?: import('node:net').Socket) => void) => {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca: ca.bundlePem(), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
      s.once('secureConnect', () => done(null, s));
      s.once('error', (e) => done(e));
    };
    upstream = new H2Upstream({ nowMs: Date.now, timers: realTimers, authority: `https://127.0.0.1:${srv.port}`, open });
    const first = await request(upstream);
    await new Promise((r) => first.once('response', r));
    svid = await ca.mintSvid('spiffe://example.org/ns/default/sa/api');
    (server as http2.Http2SecureServer).setSecureContext({ cert: svid.chainPem, key: svid.keyPem });
    await until('the first certificate expired', () => Date.now() > now + 2_000, 5_000);
    const second = await request(upstream);
    await until('two streams open', () => srv.open() === 2, 5_000);
    expect(srv.sessions()).toBe(2);
    expect(first.closed).toBe(false);
    for (const r of [first, second]) r.close();
  });
});
