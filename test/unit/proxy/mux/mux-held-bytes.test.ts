// What the multiplexed transport holds for later costs memory close to the bytes flow control and the write backlog
// count (outside audit 51c F1: a paused stream fed one byte per event-loop turn kept one Buffer per byte, each a view
// of a whole TLS read, ~250 MB per session against a documented 6.4 MiB). A paused stream's receive queue, a
// stream's queue for want of window, and the frames a session writes while its socket is full: tens of thousands of
// tiny pieces, each a view of a much larger buffer, are held in a few pieces and about their own size; the bytes come
// out in exactly the order they went in, across pauses, resumes, partial windows and mixed small and large pieces.
import { afterEach, describe, expect, test } from 'vitest';
import { ByteQueue, KEEP_BYTES } from '../../../../proxy/src/mux/byte-queue.js';
import { Flag, FrameType, type MuxCode, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import { MuxStream, type StreamPort } from '../../../../proxy/src/mux/mux-stream.js';
import { PartialFrame } from '../../../../proxy/src/mux/partial-frame.js';
import { RawPeer, type SocketPair, frame, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

/** A stream's session, reduced to what the tests read: the DATA handed to it, the credit given back, the faults. */
class Port implements StreamPort {
  readonly sent: Buffer[] = [];
  credited = 0;
  queuedBytes = 0;
  readonly faults: string[] = [];
  readonly congested = false;
  readonly draining = false;
  readonly remoteAddress = undefined;
  readonly remotePort = undefined;
  data(_s: MuxStream, payload: Buffer | null): void {
    if (payload) this.sent.push(payload);
  }
  windowUpdate(_s: MuxStream, increment: number): void {
    this.credited += increment;
  }
  reset(_s: MuxStream, _code: MuxCode): void {}
  forget(): void {}
  queued(delta: number): void {
    this.queuedBytes += delta;
  }
  fault(_code: MuxCode, reason: string): void {
    this.faults.push(reason);
  }
}

/** The memory a set of pieces keeps alive: every distinct buffer under them, counted once. */
function retained(pieces: readonly Buffer[]): number {
  const buffers = new Set<ArrayBufferLike>(pieces.map((p) => p.buffer));
  return [...buffers].reduce((n, b) => n + b.byteLength, 0);
}

/** `bytes` as a view in the middle of a buffer of `parent` bytes of its own (a frame sliced out of a TLS read). */
function viewOf(bytes: Buffer, parent: number): Buffer {
  const b = Buffer.allocUnsafeSlow(Math.max(parent, bytes.length));
  const at = (b.length - bytes.length) >> 1;
  bytes.copy(b, at);
  return b.subarray(at, at + bytes.length);
}

/** A seeded generator (mulberry32): the same pieces on every run. */
function random(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * below);
  };
}

/** Pieces of every kind the transport meets: 1-100-byte views of 16 KiB reads, larger thin views, large own buffers. */
function piece(rnd: (below: number) => number, room: number, at: number): Buffer {
  const kind = rnd(10);
  const n = Math.min(room, kind < 7 ? 1 + rnd(100) : kind < 9 ? 500 + rnd(7_500) : KEEP_BYTES + rnd(12_000));
  const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (at + i) % 251));
  return kind < 9 ? viewOf(bytes, 16 * 1024) : viewOf(bytes, n + rnd(n)); // a large one fills at least half its buffer
}

/** The most a paused stream holds for its 64 KiB window: docs/transport.md (twice the bytes, 256 bytes a piece). */
const MOST_PIECES = 2 * (STREAM_WINDOW / KEEP_BYTES) + 1;
const MOST_RETAINED = 2 * STREAM_WINDOW + 256 * MOST_PIECES;

describe('a paused stream holds what the peer sends in about its own size', () => {
  test('30,000 one-byte payloads, each a view of its own 2 KiB read: one piece, at most the window, in order', () => {
    const port = new Port();
    const s = new MuxStream(1, port);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.pause();
    const want = Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 31 + 7) & 0xff));
    for (let i = 0; i < want.length; i++) s.onData(viewOf(want.subarray(i, i + 1), 2_048));
    s.resume();
    // Before the fix: 30,000 deliveries keeping 30,000 reads (60 MiB) alive for 30,000 bytes of window.
    expect(got.length).toBe(1);
    expect(retained(got)).toBeLessThanOrEqual(STREAM_WINDOW);
    expect(Buffer.concat(got).equals(want)).toBe(true);
    expect(port.faults).toEqual([]);
  });

  test.each([1, 2, 3, 4, 5, 6, 7, 8])('a window of mixed pieces (seed %i): few pieces, at most twice the window, in order', (seed) => {
    const rnd = random(seed);
    const port = new Port();
    const s = new MuxStream(1, port);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.pause();
    const sent: Buffer[] = [];
    for (let at = 0; at < STREAM_WINDOW; ) {
      const p = piece(rnd, STREAM_WINDOW - at, at);
      sent.push(p);
      s.onData(p);
      at += p.length;
    }
    s.resume();
    expect(got.length).toBeLessThanOrEqual(MOST_PIECES);
    expect(retained(got)).toBeLessThanOrEqual(MOST_RETAINED);
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
  });

  test('byte-exact order across pauses and resumes, a reader that pauses again mid-delivery, credit given back', () => {
    const rnd = random(42);
    const port = new Port();
    const s = new MuxStream(1, port);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => {
      got.push(Buffer.from(b)); // a copy: the reader owns what it keeps
      if (rnd(4) === 0) s.pause();
    });
    const sent: Buffer[] = [];
    let total = 0;
    for (let round = 0; round < 200; round++) {
      if (rnd(3) > 0) s.pause();
      // What the peer may send: the window less what it sent and was not credited back.
      const room = STREAM_WINDOW - (total - port.credited);
      for (let k = rnd(40), sentNow = 0; k > 0 && room - sentNow > 0; k--) {
        const p = piece(rnd, room - sentNow, total);
        sent.push(p);
        s.onData(p);
        sentNow += p.length;
        total += p.length;
      }
      s.resume();
    }
    while (s.isPaused()) s.resume();
    expect(port.faults).toEqual([]);
    expect(total).toBeGreaterThan(4 * STREAM_WINDOW);
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
  });
});

describe("a stream's queue for want of window holds what is written in about its own size", () => {
  test('20,000 one-byte writes, each a view of a 2 KiB read, sent in a few DATA payloads in order', () => {
    const port = new Port();
    const s = new MuxStream(1, port);
    expect(s.write(Buffer.alloc(STREAM_WINDOW, 0x2a))).toBe(true); // the whole window: what follows waits
    const want = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 13) & 0xff));
    for (let i = 0; i < want.length; i++) expect(s.write(viewOf(want.subarray(i, i + 1), 2_048))).toBe(false);
    expect(s.writableLength).toBe(want.length);
    expect(port.queuedBytes).toBe(want.length);
    port.sent.length = 0;
    s.onWindowUpdate(STREAM_WINDOW);
    // Before the fix: 20,000 payloads keeping 20,000 reads (40 MiB) alive for 20,000 bytes of backlog.
    expect(port.sent.length).toBe(1);
    expect(retained(port.sent)).toBeLessThanOrEqual(2 * want.length);
    expect(Buffer.concat(port.sent).equals(want)).toBe(true);
    expect(port.queuedBytes).toBe(0);
  });

  test('mixed writes sent through windows of every size come out in order, counted exactly', () => {
    const rnd = random(7);
    const port = new Port();
    const s = new MuxStream(1, port);
    const written: Buffer[] = [];
    let total = 0;
    for (let round = 0; round < 100; round++) {
      for (let k = rnd(30); k > 0; k--) {
        const p = piece(rnd, 64 * 1024, total);
        written.push(p);
        s.write(p);
        total += p.length;
      }
      expect(port.queuedBytes).toBe(s.writableLength);
      s.onWindowUpdate(1 + rnd(3 * STREAM_WINDOW));
    }
    s.onWindowUpdate(total);
    expect(s.writableLength).toBe(0);
    expect(port.queuedBytes).toBe(0);
    expect(Buffer.concat(port.sent).equals(Buffer.concat(written))).toBe(true);
  });
});

describe('ByteQueue and PartialFrame', () => {
  test('large pieces that fill their buffer are held as they are; a cut takes exactly what fits', () => {
    const q = new ByteQueue();
    const big = Buffer.alloc(20_000, 1);
    q.push(Buffer.from('ab'));
    q.push(big);
    q.push(Buffer.from('cd'));
    expect(q.length).toBe(3);
    expect(q.bytes).toBe(20_004);
    expect(q.shift(1)!.toString()).toBe('a');
    expect(q.shift()!.toString()).toBe('b');
    expect(q.shift()).toBe(big); // not copied
    expect(q.shift(10)!.toString()).toBe('cd');
    expect(q.shift()).toBeUndefined();
    expect(q.bytes).toBe(0);
  });

  test('a frame that arrives a byte per read is joined whole, in order', () => {
    const f = new PartialFrame();
    const payload = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7) & 0xff));
    const whole = Buffer.concat([frame(FrameType.Data, 0, 0, 1, payload.length, payload), frame(FrameType.Ping, 0, 0, 0, 9)]);
    f.hold(viewOf(whole.subarray(0, 1), 16 * 1024));
    let out: Buffer | null = null;
    for (let i = 1; i < whole.length && out === null; i++) out = f.take(viewOf(whole.subarray(i, i + 1), 16 * 1024));
    // The header's 12 bytes come first, joined as soon as they are in; the session then holds the rest again.
    expect(out!.length).toBe(12);
    f.hold(out!);
    out = null;
    for (let i = 12; i < whole.length && out === null; i++) out = f.take(viewOf(whole.subarray(i, i + 1), 16 * 1024));
    expect(out!.equals(whole.subarray(0, 12 + payload.length))).toBe(true);
  });
});

describe('a session whose socket is full holds the frames of later turns in one buffer, not one write per turn', () => {
  test('2,000 PINGs answered one turn each while the peer reads nothing: no write per answer; all arrive once it reads', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const clock = { now: 1_000_000 };
    const ended: MuxEndReason[] = [];
    let writes = 0;
    const session = new MuxSession(pair.server, {
      role: 'server',
      nowMs: () => clock.now,
      maxStreams: 8,
      keepaliveIntervalMs: 60_000,
      keepaliveTimeoutMs: 60_000,
      onStream: (s) => void s.write(Buffer.alloc(12 << 20)), // more than loopback's socket buffers take
      onEnd: (r) => ended.push(r),
      onWrite: () => void writes++,
    });
    const raw = new RawPeer(pair.client);
    await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
    raw.socket.pause();
    raw.write(frame(FrameType.Data, Flag.Syn, 0, 1, 0), frame(FrameType.WindowUpdate, 0, 0, 1, 1 << 30));
    await until('the answer written and the socket full', () => session.socket.writableLength > 0 || session.ended, 10_000, 20);
    expect(ended).toEqual([]);
    const before = writes;
    for (let i = 0; i < 2_000; i++) {
      if (i % 1_000 === 0) clock.now += 1_000; // within the flood budget
      raw.write(frame(FrameType.Ping, 0, 0, 0, 5));
      await new Promise((r) => setImmediate(r));
    }
    await until('every PING read', () => pair.server.bytesRead >= 2_000 * 12 + 24, 10_000, 20);
    await new Promise((r) => setImmediate(r));
    // Before the fix: one write per turn (~2,000), each a queued entry of the socket for a 12-byte answer.
    expect(writes - before).toBeLessThanOrEqual(1);
    raw.socket.resume();
    await until('every PING answered once the peer reads', () => raw.count((f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) !== 0) === 2_000, 20_000, 20);
    expect(ended).toEqual([]);
    expect(session.ended).toBe(false);
  }, 60_000);
});
