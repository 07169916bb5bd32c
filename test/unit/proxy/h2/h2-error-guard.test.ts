// The guards of the proxy's HTTP/2 servers (h2-error-guard.ts) on real loopback h2c sessions: every stream has an
// 'error' listener before the listener's own handler runs, however that handler was registered; a stream answered
// locally and held back by a client's zero flow-control window survives the client's RST_STREAM INTERNAL_ERROR, a
// connection error and a TCP reset (each emitted an unhandled 'error' and exited the process); a stream the client
// resets with NO_ERROR while its body is paused is destroyed and reports 'close'; a failed accept is reported,
// rate-limited by the injected clock, never thrown.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { guardH2Server } from '../../../../proxy/src/h2/h2-error-guard.js';
import { respondLocal } from '../../../../proxy/src/h2/h2-forward.js';
import { keepAccepting } from '../../../../proxy/src/listeners/keep-accepting.js';
import { h2Frame as frame } from '../../../helpers/raw-h2-app.js';
import { until } from '../../../helpers/until.js';
import { realTimers } from '../../../../shared-io/timers.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const [HEADERS, RST_STREAM, SETTINGS, WINDOW_UPDATE] = [1, 3, 4, 8];

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** GET /x over h2c: static-table :method GET, :scheme http, :path / then :path /x as a literal, :authority x. */
const GET_X = Buffer.from([0x82, 0x86, 0x04, 0x02, 0x2f, 0x78, 0x01, 0x01, 0x78]);
/** POST /x: as GET_X with :method POST. */
const POST_X = Buffer.from([0x83, 0x86, 0x04, 0x02, 0x2f, 0x78, 0x01, 0x01, 0x78]);

/** A guarded h2c server whose listener answers every stream itself (403, as a refusal would), or `handler`. */
async function server(handler?: (stream: http2.ServerHttp2Stream) => void) {
  const s = http2.createServer();
  const seen: { errorListeners: number; stream: http2.ServerHttp2Stream }[] = [];
  // Registered before the guard on purpose: the guard still comes first.
  s.on('stream', (stream) => {
    seen.push({ errorListeners: stream.listenerCount('error'), stream });
    if (handler) handler(stream);
    else respondLocal(stream, false, 403, 'authz_denied', 7);
  });
  guardH2Server(s, realTimers);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const sessions = new Set<http2.ServerHttp2Session>();
  s.on('session', (session) => sessions.add(session));
  closers.push(() => {
    for (const session of sessions) session.destroy();
    s.close();
  });
  return { port: (s.address() as net.AddressInfo).port, seen };
}

/** A raw client that advertises SETTINGS_INITIAL_WINDOW_SIZE 0 and sends `head` on stream 1. */
async function zeroWindowClient(port: number, head: Buffer, endStream = true) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  closers.push(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', r));
  const frames: { type: number; id: number }[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      frames.push({ type: buf[3]!, id: buf.readUInt32BE(5) & 0x7fffffff });
      if (buf[3] === SETTINGS && (buf[4]! & 1) === 0) socket.write(frame(SETTINGS, 1, 0));
      buf = buf.subarray(9 + len);
    }
  });
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(HEADERS, 0x4 | (endStream ? 0x1 : 0), 1, head)]));
  return { socket, frames };
}

/** A client that must be served after whatever happened: the process (this test worker) is still there. */
function get(port: number): Promise<number> {
  return new Promise((resolve) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.on('error', () => resolve(0));
    const req = c.request({ ':path': '/next' });
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        c.close();
        resolve(Number(h[':status']));
      });
    });
  });
}

describe('guardH2Server', () => {
  const triggers = {
    'RST_STREAM INTERNAL_ERROR': (s: net.Socket) => s.write(frame(RST_STREAM, 0, 1, u32(http2.constants.NGHTTP2_INTERNAL_ERROR))),
    'a WINDOW_UPDATE overflowing the connection window': (s: net.Socket) => s.write(frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff))),
    'a TCP reset': (s: net.Socket) => s.resetAndDestroy(),
  };
  test.each(Object.keys(triggers) as (keyof typeof triggers)[])('a local answer held by a zero window, then %s: no unhandled error, the server serves on', async (trigger) => {
    const t = await server();
    const c = await zeroWindowClient(t.port, GET_X);
    await until('the 403 head went out', () => c.frames.some((f) => f.type === HEADERS && f.id === 1), 2_000, 10);
    const stream = t.seen[0]!.stream;
    expect(stream.destroyed).toBe(false); // held: its body waits for a window
    triggers[trigger](c.socket);
    await until('the held stream is gone', () => stream.destroyed, 2_000, 10);
    expect(await get(t.port)).toBe(403);
    // Unhandled, the 'error' would have failed this file (vitest reports it); the listener was there from the start.
    expect(t.seen.map((s) => s.errorListeners)).toEqual([1, 1]);
  });

  test('a stream the client resets with NO_ERROR while its body is paused is destroyed and reports close', async () => {
    let closed = false;
    const t = await server((stream) => {
      stream.pause(); // as when the upstream does not read the body
      stream.on('close', () => {
        closed = true;
      });
    });
    const c = await zeroWindowClient(t.port, POST_X, false);
    await until('the stream', () => t.seen.length === 1, 2_000, 10);
    c.socket.write(frame(0, 0, 1, Buffer.alloc(1_000, 0x61))); // DATA, buffered and never read
    await new Promise((r) => setTimeout(r, 50));
    c.socket.write(frame(RST_STREAM, 0, 1, u32(http2.constants.NGHTTP2_NO_ERROR)));
    await until('close', () => closed, 2_000, 10);
    const stream = t.seen[0]!.stream;
    expect(stream.destroyed).toBe(true);
    expect(() => respondLocal(stream, false, 504, 'request_timeout', 4)).not.toThrow();
  });
});

describe('keepAccepting', () => {
  test('an accept failure of a listening server is reported, at most once per 10 s with the count since; never thrown', async () => {
    const s = net.createServer();
    let now = 0;
    const reports: [string, number][] = [];
    keepAccepting(
      s,
      () => now,
      (err, failures) => reports.push([err.message, failures]),
    );
    s.emit('error', new Error('not listening yet')); // a bind failure is listenOn's (it rejects)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    closers.push(() => s.close());
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
    s.emit('error', emfile);
    now += 5_000;
    s.emit('error', emfile);
    s.emit('error', emfile);
    now += 5_000;
    s.emit('error', emfile);
    expect(reports).toEqual([
      ['accept EMFILE', 1],
      ['accept EMFILE', 3],
    ]);
  });
});
