// Property test of the multiplexed transport's reader (proxy/src/mux) against a hostile peer: a serving MuxSession,
// and a dialing one, on loopback TCP read generated frame sequences (every frame type and then some, any flags,
// codes, stream ids and lengths, valid or not), written in random pieces, sometimes with one byte changed. Whatever
// arrives, nothing is thrown (an uncaught error fails the file); a session that ends reports one known reason,
// writes at most one GOAWAY and closes its socket; a session that has not ended after whole frames still answers a
// PING, so it is not wedged. The hand-made cases of each fault are in mux-hostile.test.ts; this looks for the ones
// nobody wrote.
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { Flag, FrameType, MAX_WINDOW, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { fuzzParams, fuzzTimeoutMs } from '../../../helpers/fuzz-params.js';
import { frame, RawPeer, type SocketPair, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const REASONS: readonly MuxEndReason[] = ['closed', 'protocol', 'flow_control', 'frame_size', 'flood', 'keepalive', 'stream_id', 'write_backlog'];

interface FrameSpec {
  readonly type: number;
  readonly flags: number;
  readonly code: number;
  readonly stream: number;
  /** DATA: the payload (its length is the header's); other types carry none. */
  readonly payload: Uint8Array;
  /** Other types: the header's length field (a window increment, a PING value, a stream limit). */
  readonly length: number;
}

const frameSpec: fc.Arbitrary<FrameSpec> = fc.record({
  // Mostly the five known types, DATA most of all; now and then any type byte.
  type: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(0, 0, 0, 1, 1, 2, 3, 4) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  flags: fc.oneof(fc.constantFrom(0, Flag.Syn, Flag.Fin, Flag.Rst, Flag.Ack, Flag.Syn | Flag.Fin, Flag.Syn | Flag.Rst, Flag.Fin | Flag.Rst), fc.integer({ min: 0, max: 255 })),
  code: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5), fc.integer({ min: 0, max: 0xffff })),
  // Odd ids in order open streams; the rest are ids a dialer may not use (0, even, reused, huge).
  stream: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 3, 5, 7, 9) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 4) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  // Small payloads, or one large enough to overrun a stream's window in two frames (or the largest frame).
  payload: fc.oneof({ weight: 8, arbitrary: fc.uint8Array({ maxLength: 48 }) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom(40_000, 65_536, 65_537), fc.integer({ min: 1, max: 66_000 })).map((n) => new Uint8Array(n)) }),
  length: fc.oneof(fc.constantFrom(0, 1, STREAM_WINDOW, MAX_WINDOW, MAX_WINDOW + 1, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
});

const encode = (f: FrameSpec): Buffer =>
  f.type === FrameType.Data ? frame(f.type, f.flags, f.code, f.stream, f.payload.length, Buffer.from(f.payload)) : frame(f.type, f.flags, f.code, f.stream, f.length);

interface Input {
  readonly frames: readonly FrameSpec[];
  /** Made to follow the framing rules first (see lawful). */
  readonly rules: boolean;
  /** One byte changed (at a position taken modulo the input's length): frames no longer line up. */
  readonly mutation: { readonly at: number; readonly value: number } | null;
  /** Where the bytes are cut into separate writes (fractions of the input's length). */
  readonly cuts: readonly number[];
}

type Role = 'server' | 'client';

/** The dialer under test opens this many streams as soon as it is ready (odd ids 1, 3, 5). */
const DIALER_STREAMS = 3;

/**
 * Half the time the frames are made to follow the framing rules, so runs get past the first checks into what open
 * streams do: windows, half-closes, resets, refusals. Known types only, PING, GOAWAY and SETTINGS on stream 0; a
 * dialer sends no SETTINGS and SYN only on DATA, each SYN taking the next odd id, its other frames a stream opened;
 * a server opens no stream and names one of the dialer's, and its SETTINGS allow at least one.
 */
function lawful(frames: readonly FrameSpec[], peerOf: Role): FrameSpec[] {
  let next = 1;
  return frames.map((g) => {
    const type = g.type > FrameType.Settings || (g.type === FrameType.Settings && peerOf === 'server') ? FrameType.Ping : g.type;
    // Only DATA opens a stream: SYN on any other frame is a fault (protocol), so a lawful one carries none.
    const f = { ...g, type, flags: type === FrameType.Data ? g.flags : g.flags & ~Flag.Syn, length: type === FrameType.Settings ? Math.max(1, g.length % 1_000) : g.length };
    if (type !== FrameType.Data && type !== FrameType.WindowUpdate) return { ...f, stream: 0 };
    if (peerOf === 'client') return { ...f, flags: f.flags & ~Flag.Syn, stream: 1 + 2 * (f.stream % DIALER_STREAMS) };
    if (f.flags & Flag.Syn) {
      const stream = next;
      next += 2;
      return { ...f, stream };
    }
    return next === 1 ? f : { ...f, stream: 1 + 2 * (f.stream % ((next - 1) / 2)) };
  });
}

const input: fc.Arbitrary<Input> = fc.record({
  frames: fc.array(frameSpec, { minLength: 1, maxLength: 30 }),
  rules: fc.boolean(),
  mutation: fc.option(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { freq: 5 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
});

function pieces(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((n) => n > 0 && n < bytes.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const n of at) {
    out.push(bytes.subarray(from, n));
    from = n;
  }
  out.push(bytes.subarray(from));
  return out;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** Sends a PING and waits for its answer (everything the session wrote before it has arrived too) or the close. */
async function answeredOrClosed(raw: RawPeer): Promise<void> {
  if (raw.closed) return;
  const value = 0x7fff_fff0; // not one the generator's PINGs are likely to use
  raw.write(frame(FrameType.Ping, 0, 0, 0, value));
  await until('the session answers the PING or closes', () => raw.closed || raw.frames.some((f) => f.type === FrameType.Ping && f.flags & Flag.Ack && f.length === value), 5_000, 5);
}

interface UnderTest {
  readonly pair: SocketPair;
  readonly session: MuxSession;
  /** The hostile end: what it writes goes to the session, what the session writes is parsed here. */
  readonly raw: RawPeer;
  /** The socket of the session under test (bytesRead: how far it has read). */
  readonly socket: SocketPair['server'];
  readonly ended: MuxEndReason[];
  readonly opened: { count: number };
}

/**
 * A session of `role` on one end of a fresh pair, the raw peer on the other, past the greeting: the server's
 * SETTINGS read by the raw dialer; or, for a dialer under test, the raw server's SETTINGS sent and the dialer's
 * streams opened. Some streams echo what they read (writes, window credit, half-close); the others never read.
 */
async function underTest(role: Role): Promise<UnderTest> {
  const pair = await tcpPair();
  const socket = role === 'server' ? pair.server : pair.client;
  const ended: MuxEndReason[] = [];
  const opened = { count: 0 };
  const serve = (s: MuxStream) => {
    opened.count++;
    s.on('error', () => undefined);
    if (s.id % 4 === 1) {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
    } else s.pause();
  };
  const session: MuxSession = new MuxSession(socket, {
    role,
    nowMs: () => Date.now(),
    maxStreams: 3,
    keepaliveIntervalMs: 60_000,
    keepaliveTimeoutMs: 60_000,
    onStream: serve,
    onReady: () => {
      for (let i = 0; i < DIALER_STREAMS; i++) {
        const s = session.open();
        serve(s);
        s.write(Buffer.from('GET / HTTP/1.1\r\nhost: a\r\n\r\n'));
      }
    },
    onEnd: (r) => ended.push(r),
  });
  const raw = new RawPeer(role === 'server' ? pair.client : pair.server);
  if (role === 'server') await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  else {
    raw.write(frame(FrameType.Settings, 0, 0, 0, 8));
    await raw.next('the last SYN', (f) => f.type === FrameType.Data && (f.flags & Flag.Syn) !== 0 && f.stream === 2 * DIALER_STREAMS - 1);
  }
  return { pair, session, raw, socket, ended, opened };
}

for (const role of ['server', 'client'] as const) {
  describe(`a ${role === 'server' ? 'serving' : 'dialing'} session reads generated hostile frames`, () => {
    // Each run's pair, closed at its end (or here, when an assertion stopped the run).
    const pairs: SocketPair[] = [];
    afterAll(async () => {
      for (const p of pairs.splice(0)) await p.close();
    });

    const run = async ({ frames, rules, mutation, cuts }: Input): Promise<void> => {
      const t = await underTest(role);
      pairs.push(t.pair);
      const bytes = Buffer.concat((rules ? lawful(frames, role) : frames).map(encode));
      if (mutation) bytes[mutation.at % bytes.length] = mutation.value;
      const before = t.socket.bytesRead;
      for (const piece of pieces(bytes, cuts)) {
        t.raw.write(piece);
        await turn();
      }
      // Whole frames only: a session still open answers a PING.
      if (!mutation) await answeredOrClosed(t.raw);
      else await until('the session has read everything', () => t.raw.closed || t.session.ended || t.socket.bytesRead - before >= bytes.length, 5_000, 5);
      if (t.session.ended || t.raw.closed) {
        await until('the session closed the connection', () => t.raw.closed, 5_000, 5);
        await until('the session reported its end', () => t.ended.length > 0, 5_000, 5);
        expect(t.ended).toHaveLength(1);
        expect(REASONS).toContain(t.ended[0]);
        expect(t.raw.count((f) => f.type === FrameType.GoAway)).toBeLessThanOrEqual(1);
      } else {
        expect(t.ended).toEqual([]);
      }
      await pairs.pop()?.close();
    };

    test('the generator reaches open streams, resets and the faults (not vacuous)', async () => {
      const seen = new Set<string>();
      for (const sample of fc.sample(input, { seed: 7, numRuns: 150 })) {
        const t = await underTest(role);
        const opened = t.opened.count;
        t.raw.write(Buffer.concat((sample.rules ? lawful(sample.frames, role) : sample.frames).map(encode)));
        await answeredOrClosed(t.raw);
        if (t.opened.count > opened) seen.add('stream opened');
        if (t.raw.frames.some((f) => f.type === FrameType.Data && f.flags & Flag.Rst)) seen.add('stream refused or reset');
        if (!t.session.ended) seen.add('still open');
        for (const r of t.ended) seen.add(r);
        await t.pair.close();
      }
      const kinds = ['still open', 'protocol', 'stream_id', 'flow_control', 'frame_size', ...(role === 'server' ? ['stream opened', 'stream refused or reset'] : [])];
      for (const kind of kinds) expect(seen, kind).toContain(kind);
    }, fuzzTimeoutMs());

    test('nothing thrown; an ended session says why once and closes; an open one still answers', async () => {
      await fc.assert(fc.asyncProperty(input, run), fuzzParams(role === 'server' ? 0x3a5e_1f : 0x3a5e_20, 120));
    }, fuzzTimeoutMs());
  });
}
