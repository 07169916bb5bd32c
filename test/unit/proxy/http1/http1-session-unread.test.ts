// A caller that pipelines requests and does not read the answers (Http1Session on loopback, with the harness of
// test/helpers/http1-session-harness.ts): whatever the answers are (the proxy's own 403s, forwarded ones with an
// interim head before each, the late answer to a slow request ahead of them), the session reads and parses nothing
// more of that caller while a write to it waits, so what is queued for it stays under the socket's high-water mark
// (one write past it at most). Once the caller reads, every request is answered, in order; one that never reads is
// cut at the idle timeout.
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { localResponse } from '../../../../proxy/src/http1/head-rewrite.js';
import { type Cleanup, http1Harness, rawApp } from '../../../helpers/http1-session-harness.js';
import { until } from '../../../helpers/until.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;
const DENIED = localResponse(403, 'authz_denied', false).toString('latin1');
const refuseAllBut = (forwarded: string) => (head: { target?: string }) =>
  head.target === forwarded ? ({ forward: true, add: '' } as const) : ({ forward: false, status: 403, code: 'authz_denied' } as const);

/** The largest queue (writableLength) ever left on the proxy's end of the client connection after a write. */
function watchQueue(socket: net.Socket): { peak: number } {
  const seen = { peak: 0 };
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  (socket as unknown as { write: (chunk: Buffer) => boolean }).write = (chunk: Buffer) => {
    const ok = write(chunk);
    seen.peak = Math.max(seen.peak, socket.writableLength);
    return ok;
  };
  return seen;
}

/** Resolves once `count()` has not changed for `quietMs` (bounded): the session has stopped, or is done. */
async function settled(count: () => number, quietMs = 300, capMs = 30_000): Promise<number> {
  const deadline = Date.now() + capMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const n = count();
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`still changing after ${capMs} ms (at ${last})`);
}

/**
 * A client that writes `bytes` and reads nothing until read() is called. What it reads is counted as it comes
 * (`length`, for polling) and joined once (`text`): joining megabytes on every poll made the wait quadratic, so a
 * loaded machine spent the test's minute joining strings rather than moving bytes.
 */
async function unreadingClient(port: number, bytes: string): Promise<{ socket: net.Socket; read: () => { length: () => number; text: () => string } }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  cleanups.push(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.pause();
  socket.write(bytes, 'latin1');
  return {
    socket,
    read: () => {
      const parts: Buffer[] = [];
      let length = 0;
      socket.on('data', (d: Buffer) => {
        parts.push(d);
        length += d.length;
      });
      socket.resume();
      return { length: () => length, text: () => Buffer.concat(parts).toString('latin1') };
    },
  };
}

describe('a caller that pipelines and does not read', () => {
  test('100,000 refused requests behind a slow one: the queue for the caller stays under the high-water mark; read, all are answered in order', async () => {
    const N = 100_000;
    const held: net.Socket[] = [];
    const app = await rawApp(cleanups, (s) => s.once('data', () => held.push(s)));
    let queue: { peak: number } | undefined;
    let down: net.Socket | undefined;
    const p = await http1Harness(app.port, cleanups, {
      plan: refuseAllBut('/slow'),
      onDownstream: (s) => {
        down = s;
        queue = watchQueue(s);
      },
    });
    const c = await unreadingClient(p.port, GET('/slow') + GET('/denied').repeat(N));
    await until('the slow request at the app', () => held.length === 1, 5_000, 10);
    const late = 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate';
    held[0]!.write(late);
    const answered = await settled(() => p.records.length);
    // It stopped: the rest waits in the kernel's buffers and the caller's, not in the proxy's memory.
    expect(answered).toBeLessThan(N + 1);
    const hwm = down!.writableHighWaterMark;
    expect(queue!.peak).toBeLessThan(hwm + DENIED.length);
    expect(down!.writableLength).toBeLessThan(hwm + DENIED.length);

    const r = c.read();
    await until('every answer', () => p.records.length === N + 1, 60_000, 20);
    const expected = late.length + N * DENIED.length;
    await until('every byte', () => r.length() >= expected, 30_000, 20);
    const text = r.text();
    expect(text.length).toBe(expected);
    expect(text.startsWith(late)).toBe(true);
    expect(text.slice(late.length) === DENIED.repeat(N)).toBe(true);
    expect(p.records[0]).toMatchObject({ target: '/slow', status: 200 });
    expect(p.records.slice(1).every((x) => x.status === 403 && x.target === '/denied')).toBe(true);
    expect(queue!.peak).toBeLessThan(hwm + DENIED.length);
  }, 120_000);

  test('forwarded answers, each after an interim head: the session forwards no more while the caller is behind; read, all arrive in order', async () => {
    // Small enough that each answer comes in one upstream read: larger ones used to stall mid-answer by chance
    // (the upstream paused for the full client, its next read never made), which hid the queueing.
    const N = 10_000;
    const BODY = 4 * 1024;
    const answer = (target: string) => `HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: ${BODY}\r\n\r\n${target.padEnd(BODY, '.')}`;
    let received = 0;
    const app = await rawApp(cleanups, (s) => {
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const target = buf.slice(0, end).split(' ')[1]!;
          buf = buf.slice(end + 4);
          received++;
          s.write(answer(target));
        }
      });
    });
    let queue: { peak: number } | undefined;
    let down: net.Socket | undefined;
    const p = await http1Harness(app.port, cleanups, {
      onDownstream: (s) => {
        down = s;
        queue = watchQueue(s);
      },
    });
    const targets = Array.from({ length: N }, (_, i) => `/f/${i}`);
    const c = await unreadingClient(p.port, targets.map(GET).join(''));
    const forwarded = await settled(() => received);
    expect(forwarded).toBeLessThan(N);
    // One upstream read (at most 64 KiB) may go out after the write that crossed the mark; nothing more.
    const hwm = down!.writableHighWaterMark;
    expect(queue!.peak).toBeLessThan(hwm + 64 * 1024 + 1024);

    const r = c.read();
    const expected = targets.map(answer).join('');
    await until('every answer', () => r.length() >= expected.length, 60_000, 20);
    expect(r.text() === expected).toBe(true);
    expect(p.records.map((x) => x.target)).toEqual(targets);
    expect(queue!.peak).toBeLessThan(hwm + 64 * 1024 + 1024);
  }, 120_000);

  test('a long run of refused requests buffered behind a slow one is answered in one pass, the stack no deeper for it', async () => {
    // 40,000 pipelined requests parsed at once when the slow answer comes: once a recursion of two frames per request.
    const N = 40_000;
    const held: net.Socket[] = [];
    const app = await rawApp(cleanups, (s) => s.once('data', () => held.push(s)));
    let down: net.Socket | undefined;
    const p = await http1Harness(app.port, cleanups, {
      plan: refuseAllBut('/slow'),
      limits: { maxHeaderBytes: 2 * 1024 * 1024 },
      onDownstream: (s) => {
        down = s;
      },
    });
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    cleanups.push(() => process.off('uncaughtException', onError));
    const sent = GET('/slow') + GET('/').repeat(N);
    const c = await unreadingClient(p.port, sent);
    c.read(); // the client reads: only the parsing of the buffered run is under test
    await until('the slow request at the app', () => held.length === 1, 5_000, 10);
    // Everything else is in the session's buffer (it stops reading only past maxHeaderBytes) when the answer comes:
    // the session's socket has read every byte (a fixed wait cannot tell that on a loaded machine).
    await until('all of it read by the session', () => down!.bytesRead === sent.length, 10_000, 10);
    held[0]!.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate');
    await until('every answer', () => p.records.length === N + 1, 30_000, 20);
    expect(errors).toEqual([]);
    expect(p.sessions[0]!.closed).toBe(false);
  }, 60_000);

  test('a caller that never reads is cut at the idle timeout, its connection let go', async () => {
    const app = await rawApp(cleanups, () => undefined);
    let down: net.Socket | undefined;
    const p = await http1Harness(app.port, cleanups, {
      plan: refuseAllBut('/none'),
      onDownstream: (s) => {
        down = s;
      },
    });
    await unreadingClient(p.port, GET('/denied').repeat(100_000));
    await settled(() => p.records.length);
    expect(p.sessions[0]!.closed).toBe(false);
    p.advance(5_001); // HARNESS_LIMITS.idleTimeoutMs
    expect(p.sessions[0]!.closed).toBe(true);
    await until('the connection destroyed', () => down!.destroyed, 5_000, 10);
  }, 60_000);
});

describe('a caller that does not read the last answer of a closing connection', () => {
  test('a refused request with a body is answered and the connection ended; a caller that never reads it is let go at the idle timeout', async () => {
    const app = await rawApp(cleanups, () => undefined);
    let down: net.Socket | undefined;
    const p = await http1Harness(app.port, cleanups, {
      plan: refuseAllBut('/none'),
      onDownstream: (s) => {
        down = s;
      },
    });
    // A refusal of a request with a body ends the connection after its answer (the body is not read). The caller
    // neither reads nor closes: without a deadline the half-closed connection would stay for as long as it likes.
    const body = 'x'.repeat(4 << 20);
    await unreadingClient(p.port, `POST /denied HTTP/1.1\r\nHost: app\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await until('answered', () => p.records.length === 1, 10_000, 10);
    expect(p.sessions[0]!.closed).toBe(false);
    p.advance(4_000);
    expect(down!.destroyed).toBe(false);
    p.advance(1_001); // HARNESS_LIMITS.idleTimeoutMs after the close
    await until('the connection destroyed', () => down!.destroyed, 5_000, 10);
    expect(p.sessions[0]!.closed).toBe(true);
  }, 60_000);
});
