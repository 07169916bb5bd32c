// A peer of the multiplexed transport that does not read what it is sent, against a serving MuxSession (loopback
// TCP, a raw peer writing hand-made frames, as in mux-hostile.test.ts): what a stream holds for want of window counts
// toward the session's write backlog (past 16 MiB the session ends, write_backlog), and a reset stream's share stops
// counting; a writer told to wait for a busy turn hears when it may go on; an HTTP/1.1 session on a stream whose
// peer grants no window stops reading it, so a peer that keeps within the window it is granted cannot make the
// server queue more than about one answer; once it grants window, every pipelined request is answered. A stream
// delivers what it held inside resume(): resumed by the session at the end of an exchange it starts one exchange at
// a time, in order, and resumed when a tunnel starts, every byte it held reaches the app.
import { afterEach, describe, expect, test } from 'vitest';
import { localResponse } from '../../../../proxy/src/http1/head-rewrite.js';
import { Http1Session } from '../../../../proxy/src/http1/http1-session.js';
import { Flag, FrameType, MAX_DATA_PAYLOAD, MuxCode, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { ConnectionPool } from '../../../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../../../proxy/src/upstream/connectors.js';
import { type Cleanup, HARNESS_LIMITS, HARNESS_UPGRADES, rawApp } from '../../../helpers/http1-session-harness.js';
import { RawPeer, type SocketPair, frame, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const pairs: SocketPair[] = [];
const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MiB = 1 << 20;
const syn = (id: number) => frame(FrameType.Data, Flag.Syn, 0, id, 0);
const data = (id: number, payload: Buffer) => frame(FrameType.Data, 0, 0, id, payload.length, payload);
const windowUpdate = (id: number, n: number) => frame(FrameType.WindowUpdate, 0, 0, id, n);

/** A serving session on one end of a fresh pair, a raw peer (which reads every frame, grants nothing) on the other. */
async function served(onStream: (s: MuxStream) => void = (s) => s.pause(), maxStreams = 8) {
  const pair = await tcpPair();
  pairs.push(pair);
  const ended: MuxEndReason[] = [];
  const streams: MuxStream[] = [];
  const session = new MuxSession(pair.server, {
    role: 'server',
    nowMs: () => Date.now(),
    maxStreams,
    keepaliveIntervalMs: 60_000,
    keepaliveTimeoutMs: 60_000,
    onStream: (s) => {
      streams.push(s);
      s.on('error', () => undefined);
      onStream(s);
    },
    onEnd: (r) => ended.push(r),
  });
  const raw = new RawPeer(pair.client);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  return { session, raw, ended, streams };
}

describe('what a stream holds for want of window', () => {
  test('counts toward the session backlog: a peer that grants no window ends the session past 16 MiB', async () => {
    const s = await served();
    s.raw.write(syn(1));
    await until('stream 1', () => s.streams.length === 1);
    const stream = s.streams[0]!;
    // The writer ignores the wait it is told (false from write): only the session's bound stops it.
    for (let i = 0; i < 20 && !s.session.ended; i++) stream.write(Buffer.alloc(MiB));
    expect(s.ended).toEqual(['write_backlog']);
    expect(stream.destroyed).toBe(true);
    await until('the server closed the connection', () => s.raw.closed);
  });

  test('is counted exactly (window granted sends it, a reset stream stops counting)', async () => {
    const s = await served();
    s.raw.write(syn(1), syn(3));
    await until('streams 1 and 3', () => s.streams.length === 2);
    const [a, b] = s.streams as [MuxStream, MuxStream];
    expect(a.write(Buffer.alloc(STREAM_WINDOW + 12 * MiB))).toBe(false);
    expect(a.writableLength).toBe(12 * MiB);
    s.raw.write(windowUpdate(1, 1_000));
    await until('the window spent', () => a.writableLength === 12 * MiB - 1_000);
    // Its 12 MiB no longer count once the peer resets it: 12 MiB more on stream 3 stay under the bound.
    s.raw.write(frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, 1, 0));
    await until('stream 1 reset', () => a.destroyed);
    expect(b.write(Buffer.alloc(STREAM_WINDOW + 12 * MiB))).toBe(false);
    expect(s.ended).toEqual([]);
    b.write(Buffer.alloc(5 * MiB));
    expect(s.ended).toEqual(['write_backlog']);
  });
});

describe('a writer told to wait', () => {
  test('because one turn passed 1 MiB hears drain even when the socket takes the turn whole', async () => {
    // The HTTP/1.1 session on a stream reads nothing more of its caller until that 'drain': one never sent stalled it.
    const s = await served(undefined, 32);
    for (let i = 0; i < 20; i++) s.raw.write(syn(2 * i + 1));
    await until('20 streams', () => s.streams.length === 20);
    const told = s.streams.map((x, i) => x.write(Buffer.alloc(i < 19 ? STREAM_WINDOW : 100)));
    expect(told.slice(0, 15).every(Boolean)).toBe(true); // 15 × 64 KiB (and frame headers) fit under 1 MiB
    const last = s.streams[19]!;
    expect(told[19]).toBe(false); // this turn holds more than 1 MiB: wait
    let drained = false;
    last.on('drain', () => {
      drained = true;
    });
    const bytes = () => s.raw.frames.reduce((n, f) => n + (f.type === FrameType.Data ? f.payload.length : 0), 0);
    await until('the turn read by the peer', () => bytes() === 19 * STREAM_WINDOW + 100);
    await until('drain', () => drained, 2_000, 10);
    expect(last.writableLength).toBe(0);
  });
});

describe('an HTTP/1.1 session on a stream whose peer does not read', () => {
  test('stops reading it: a peer within its window cannot make it queue more than one answer; granted window, all are answered', async () => {
    const N = 20_000;
    const DENIED = localResponse(403, 'authz_denied', false);
    const records: number[] = [];
    const s = await served(
      (stream) =>
        void new Http1Session(stream, {
          limits: HARNESS_LIMITS,
          responseLimits: { maxHeaderBytes: 8_192, maxHeaders: 50 },
          upgrades: HARNESS_UPGRADES,
          timers: realTimers,
          nowMs: () => Date.now(),
          hooks: { plan: () => ({ forward: false, status: 403, code: 'authz_denied' }), done: (r) => records.push(r.status), rejected: () => undefined },
        }),
    );
    const requests = Buffer.from('GET /denied HTTP/1.1\r\nHost: app\r\n\r\n'.repeat(N), 'latin1');
    const granted = () => STREAM_WINDOW + s.raw.frames.reduce((n, f) => n + (f.type === FrameType.WindowUpdate && f.stream === 1 ? f.length : 0), 0);
    let sent = 0;
    /** Sends what the server's window allows; returns once all is sent or no more window came for `quietMs`. */
    const sendWithinWindow = async (quietMs: number) => {
      while (sent < requests.length) {
        const room = Math.min(granted() - sent, MAX_DATA_PAYLOAD, requests.length - sent);
        if (room > 0) {
          s.raw.write(data(1, requests.subarray(sent, sent + room)));
          sent += room;
          continue;
        }
        const before = granted();
        try {
          await until('more window', () => granted() > before, quietMs, 5);
        } catch {
          return;
        }
      }
    };
    s.raw.write(syn(1));
    await sendWithinWindow(500);
    // Held back: the server stopped taking requests (and granting window) once its answers had no window.
    expect(sent).toBeLessThan(4 * STREAM_WINDOW);
    const stream = s.streams[0]!;
    expect(stream.writableLength).toBeLessThan(DENIED.length);
    expect(s.ended).toEqual([]);

    // The peer reads on: it grants the window, and the rest of its requests flow.
    s.raw.write(windowUpdate(1, 2 ** 30));
    // All must flow now: a long quiet bound, so a stalled machine is not read as the server holding back.
    await sendWithinWindow(10_000);
    expect(sent).toBe(requests.length);
    const answered = () => s.raw.frames.reduce((n, f) => n + (f.type === FrameType.Data && f.stream === 1 ? f.payload.length : 0), 0);
    await until('every answer', () => answered() === N * DENIED.length, 30_000, 20);
    const text = Buffer.concat(s.raw.frames.filter((f) => f.type === FrameType.Data && f.stream === 1).map((f) => f.payload)).toString('latin1');
    expect(text === DENIED.toString('latin1').repeat(N)).toBe(true);
    expect(records.length).toBe(N);
    expect(s.ended).toEqual([]);
  }, 60_000);

  test('a stream paused behind a slow exchange, resumed when it ends, starts one exchange at a time, in order', async () => {
    // A stream delivers what it held as soon as it is resumed, inside the session's own call: the session must not
    // start a second exchange beside the one those bytes just started.
    let release: (() => void) | undefined;
    const app = await rawApp(cleanups, (sock) => {
      let buf = '';
      sock.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const target = buf.slice(0, end).split(' ')[1]!;
          buf = buf.slice(end + 4);
          const answer = () => sock.write(`HTTP/1.1 200 OK\r\ncontent-length: ${target.length}\r\n\r\n${target}`);
          if (target === '/slow') release = answer;
          else answer();
        }
      });
    });
    const pool = new ConnectionPool({ connect: plainConnector('127.0.0.1', app.port, 2_000), maxConnections: 4, maxQueue: 8, idleTimeoutMs: 60_000, nowMs: () => Date.now(), timers: realTimers });
    cleanups.push(() => pool.close());
    const targets: string[] = [];
    const s = await served(
      (stream) =>
        void new Http1Session(stream, {
          limits: { ...HARNESS_LIMITS, maxHeaderBytes: 1_024 },
          responseLimits: { maxHeaderBytes: 8_192, maxHeaders: 50 },
          upgrades: HARNESS_UPGRADES,
          timers: realTimers,
          pool,
          nowMs: () => Date.now(),
          hooks: { plan: () => ({ forward: true, add: '' }), done: (r) => targets.push(r.target), rejected: () => undefined },
        }),
    );
    const paths = Array.from({ length: 200 }, (_, i) => `/p/${i}`);
    s.raw.write(syn(1), data(1, Buffer.from('GET /slow HTTP/1.1\r\nHost: app\r\n\r\n')));
    await until('the slow request at the app', () => release !== undefined);
    // Ten frames of pipelined requests: past maxHeaderBytes the session pauses the stream, which keeps the rest.
    for (let i = 0; i < 10; i++) s.raw.write(data(1, Buffer.from(paths.slice(20 * i, 20 * i + 20).map((p) => `GET ${p} HTTP/1.1\r\nHost: app\r\n\r\n`).join(''))));
    await new Promise((r) => setTimeout(r, 200));
    release!();
    await until('every answer', () => targets.length === 201, 10_000, 10);
    expect(targets).toEqual(['/slow', ...paths]);
    // An exchange is recorded when its answer is handed to the stream; the session writes it at the end of the turn
    // (a full socket: at its 'drain'), so the last bytes reach the peer a little later: wait for them, then compare.
    const expected = ['/slow', ...paths].map((t) => `HTTP/1.1 200 OK\r\ncontent-length: ${t.length}\r\n\r\n${t}`).join('');
    const text = () => Buffer.concat(s.raw.frames.filter((f) => f.type === FrameType.Data && f.stream === 1).map((f) => f.payload)).toString('latin1');
    await until('every answer at the peer', () => text().length >= expected.length, 10_000, 10);
    expect(text()).toBe(expected);
  });

  test('bytes a paused stream held past the upgrade request all reach the app after its 101', async () => {
    // Sent before the 101 (the new protocol, optimistically): past maxHeaderBytes the stream holds them; resumed
    // when the tunnel starts, it delivers them at once, and the tunnel must already be there to take them.
    let appGot = '';
    let switched: (() => void) | undefined;
    const app = await rawApp(cleanups, (sock) => {
      let head = true;
      sock.on('data', (d: Buffer) => {
        const text = d.toString('latin1');
        if (!head) {
          appGot += text;
          return;
        }
        const end = text.indexOf('\r\n\r\n');
        head = false;
        appGot += text.slice(end + 4);
        switched = () => sock.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
      });
    });
    const pool = new ConnectionPool({ connect: plainConnector('127.0.0.1', app.port, 2_000), maxConnections: 4, maxQueue: 8, idleTimeoutMs: 60_000, nowMs: () => Date.now(), timers: realTimers });
    cleanups.push(() => pool.close());
    const s = await served(
      (stream) =>
        void new Http1Session(stream, {
          limits: { ...HARNESS_LIMITS, maxHeaderBytes: 1_024 },
          responseLimits: { maxHeaderBytes: 8_192, maxHeaders: 50 },
          upgrades: HARNESS_UPGRADES,
          timers: realTimers,
          pool,
          nowMs: () => Date.now(),
          hooks: { plan: () => ({ forward: true, add: '', upgrade: true }), done: () => undefined, rejected: () => undefined },
        }),
    );
    s.raw.write(syn(1), data(1, Buffer.from('GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n')));
    await until('the upgrade request at the app', () => switched !== undefined);
    const early = Array.from({ length: 10 }, (_, i) => `${String(i).padStart(4, '0')}${'e'.repeat(596)}`);
    for (const part of early) s.raw.write(data(1, Buffer.from(part)));
    await new Promise((r) => setTimeout(r, 200));
    switched!();
    await until('every early byte at the app', () => appGot.length >= early.join('').length, 5_000, 10);
    expect(appGot).toBe(early.join(''));
  });
});
