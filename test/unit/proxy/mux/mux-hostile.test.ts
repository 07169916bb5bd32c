// A serving MuxSession against a raw peer that writes hand-made frames (loopback TCP, one case over mTLS): every
// fault of the peer ends the session with a GOAWAY carrying the right code, onEnd with the right reason, the socket
// closed, nothing thrown; a PING flood is answered, but only up to the budget; a flood of frames that carry nothing
// ends the session; a fresh session on the same server still works afterwards.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Flag, FrameType, MAX_DATA_PAYLOAD, MAX_WINDOW, MuxCode, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { RawPeer, type SocketPair, frame, tcpPair, tlsPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

interface Served {
  readonly raw: RawPeer;
  readonly session: MuxSession;
  readonly ended: MuxEndReason[];
  readonly streams: MuxStream[];
  readonly errors: Error[];
  /** Resolves at the session's next socket read. */
  nextRead(): Promise<void>;
  /** The session's clock (ms), moved only by the test: a slow machine never spreads a burst over two seconds. */
  readonly clock: { now: number };
}

/** A server-role session on one end of a fresh pair, the raw peer on the other, the SETTINGS already read. */
async function served(o: { transport?: 'tcp' | 'tls'; maxStreams?: number; answer?: boolean | 'interim' } = {}): Promise<Served> {
  const pair = o.transport === 'tls' ? await tlsPair() : await tcpPair();
  pairs.push(pair);
  const ended: MuxEndReason[] = [];
  const streams: MuxStream[] = [];
  const errors: Error[] = [];
  const readWaiters: (() => void)[] = [];
  const clock = { now: 1_000_000 };
  const session = new MuxSession(pair.server, {
    role: 'server',
    nowMs: () => clock.now,
    maxStreams: o.maxStreams ?? 8,
    keepaliveIntervalMs: 60_000,
    keepaliveTimeoutMs: 60_000,
    onStream: (s) => {
      streams.push(s);
      s.on('error', (e: Error) => errors.push(e));
      if (o.answer) s.write(Buffer.from(o.answer === 'interim' ? 'HTTP/1.1 100 Continue\r\n\r\n' : 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
      s.pause(); // nothing reads: the window is what the peer may send
    },
    onEnd: (r) => ended.push(r),
    onRead: () => {
      for (const w of readWaiters.splice(0)) w();
    },
  });
  const raw = new RawPeer(pair.client);
  const settings = await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  expect(settings.length).toBe(o.maxStreams ?? 8);
  return { raw, session, ended, streams, errors, nextRead: () => new Promise((r) => readWaiters.push(r)), clock };
}

/** The session ended for the peer's fault: GOAWAY with `code` read by the peer, `reason` reported once, socket closed. */
async function expectFault(s: Served, code: MuxCode, reason: MuxEndReason): Promise<void> {
  const goaway = await s.raw.next('GOAWAY', (f) => f.type === FrameType.GoAway);
  expect(goaway.code).toBe(code);
  await until('the server closed the connection', () => s.raw.closed);
  expect(s.ended).toEqual([reason]);
  expect(s.session.ended).toBe(true);
  expect(s.raw.count((f) => f.type === FrameType.GoAway)).toBe(1);
}

const syn = (id: number, payload?: Buffer) => frame(FrameType.Data, Flag.Syn, 0, id, payload?.length ?? 0, payload);
const data = (id: number, payload: Buffer, flags = 0) => frame(FrameType.Data, flags, 0, id, payload.length, payload);
const empties = (n: number, make: () => Buffer) => Buffer.concat(Array.from({ length: n }, make));

describe('a peer at fault ends the session with GOAWAY, never the process', () => {
  test.each<[string, () => Buffer[], MuxCode, MuxEndReason]>([
    ['DATA larger than 64 KiB', () => [syn(1), frame(FrameType.Data, 0, 0, 1, MAX_DATA_PAYLOAD + 1), Buffer.alloc(MAX_DATA_PAYLOAD + 1)], MuxCode.FrameSize, 'frame_size'],
    ['a header announcing 4 GiB of DATA (no payload follows)', () => [frame(FrameType.Data, Flag.Syn, 0, 1, 0xffff_ffff)], MuxCode.FrameSize, 'frame_size'],
    ['an unknown frame type', () => [frame(9, 0, 0, 0, 0)], MuxCode.Protocol, 'protocol'],
    ['a SYN for a stream already open', () => [syn(1), syn(1)], MuxCode.Protocol, 'stream_id'],
    ['a SYN with an even id', () => [syn(2)], MuxCode.Protocol, 'stream_id'],
    ['a SYN with an id lower than one already opened', () => [syn(5), syn(3)], MuxCode.Protocol, 'stream_id'],
    ['a SYN reusing the id of a stream that ended', () => [syn(1), frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, 1, 0), syn(1)], MuxCode.Protocol, 'stream_id'],
    ['a SYN on stream 0', () => [syn(0)], MuxCode.Protocol, 'stream_id'],
    ['DATA beyond the stream window', () => [syn(1, Buffer.alloc(STREAM_WINDOW)), data(1, Buffer.alloc(1))], MuxCode.FlowControl, 'flow_control'],
    ['DATA beyond the window, in one frame', () => [syn(1, Buffer.alloc(1)), data(1, Buffer.alloc(STREAM_WINDOW))], MuxCode.FlowControl, 'flow_control'],
    ['a WINDOW_UPDATE past 2^31-1', () => [syn(1), frame(FrameType.WindowUpdate, 0, 0, 1, MAX_WINDOW)], MuxCode.FlowControl, 'flow_control'],
    ['a WINDOW_UPDATE of 2^32-1', () => [syn(1), frame(FrameType.WindowUpdate, 0, 0, 1, 0xffff_ffff)], MuxCode.FlowControl, 'flow_control'],
    ['SETTINGS sent by the dialer', () => [frame(FrameType.Settings, 0, 0, 0, 100)], MuxCode.Protocol, 'protocol'],
    ['DATA for a stream never opened', () => [data(7, Buffer.from('abc'))], MuxCode.Protocol, 'stream_id'],
    ['a WINDOW_UPDATE for a stream never opened', () => [syn(1), frame(FrameType.WindowUpdate, 0, 0, 9, 100)], MuxCode.Protocol, 'stream_id'],
    ['a FIN for a stream never opened', () => [frame(FrameType.Data, Flag.Fin, 0, 3, 0)], MuxCode.Protocol, 'stream_id'],
    ['DATA on stream 0', () => [data(0, Buffer.from('x'))], MuxCode.Protocol, 'stream_id'],
    ['a PING on a stream', () => [frame(FrameType.Ping, 0, 0, 1, 7)], MuxCode.Protocol, 'protocol'],
    ['2,001 empty DATA frames on an open stream', () => [syn(1), empties(2_001, () => data(1, Buffer.alloc(0)))], MuxCode.Flood, 'flood'],
    ['2,001 zero WINDOW_UPDATEs', () => [syn(1), empties(2_001, () => frame(FrameType.WindowUpdate, 0, 0, 1, 0))], MuxCode.Flood, 'flood'],
    // Control frames that carry nothing, found by an outside audit (millions a second were taken): an ACK of no PING
    // this side sent, every GOAWAY after the first, a credit below the half window a reader gives back at once.
    ['2,001 PING ACKs answering no PING', () => [empties(2_001, () => frame(FrameType.Ping, Flag.Ack, 0, 0, 12345))], MuxCode.Flood, 'flood'],
    ['2,002 GOAWAYs (one stream open; the first is free)', () => [syn(1), empties(2_002, () => frame(FrameType.GoAway, 0, MuxCode.None, 0, 0))], MuxCode.Flood, 'flood'],
    ['2,001 WINDOW_UPDATEs of 1 byte', () => [syn(1), empties(2_001, () => frame(FrameType.WindowUpdate, 0, 0, 1, 1))], MuxCode.Flood, 'flood'],
    ['2,001 frames for a stream that ended', () => [syn(1), frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, 1, 0), empties(2_001, () => data(1, Buffer.from('late')))], MuxCode.Flood, 'flood'],
    ['2,001 FINs on a stream whose peer side already ended', () => [syn(1, Buffer.from('GET')), data(1, Buffer.alloc(0), Flag.Fin), empties(2_001, () => data(1, Buffer.alloc(0), Flag.Fin))], MuxCode.Flood, 'flood'],
    ['2,001 late DATA frames with bytes on a stream whose peer side ended', () => [syn(1, Buffer.from('GET')), data(1, Buffer.alloc(0), Flag.Fin), empties(2_001, () => data(1, Buffer.from('x')))], MuxCode.Flood, 'flood'],
    ['DATA for an even stream id below the highest opened', () => [syn(5), data(2, Buffer.from('GET / HTTP/1.1\r\n\r\n'))], MuxCode.Protocol, 'stream_id'],
    ['a WINDOW_UPDATE for an even stream id below the highest opened', () => [syn(5), frame(FrameType.WindowUpdate, 0, 0, 4, 100)], MuxCode.Protocol, 'stream_id'],
    ['a SYN with an id above 2^31-1', () => [frame(FrameType.Data, Flag.Syn, 0, 0xffff_ffff, 0)], MuxCode.Protocol, 'stream_id'],
    // Only DATA opens a stream (audit 51c I1: a WINDOW_UPDATE flagged SYN opened one and its request was served).
    ['a WINDOW_UPDATE flagged SYN for a new stream', () => [frame(FrameType.WindowUpdate, Flag.Syn, 0, 1, 40_000), data(1, Buffer.from('GET / HTTP/1.1\r\n\r\n'))], MuxCode.Protocol, 'protocol'],
    ['a WINDOW_UPDATE flagged SYN for a stream already open', () => [syn(1), frame(FrameType.WindowUpdate, Flag.Syn, 0, 1, 40_000)], MuxCode.Protocol, 'protocol'],
    ['a PING flagged SYN', () => [frame(FrameType.Ping, Flag.Syn, 0, 0, 7)], MuxCode.Protocol, 'protocol'],
    ['a GOAWAY flagged SYN', () => [syn(1), frame(FrameType.GoAway, Flag.Syn, 0, 1, 0)], MuxCode.Protocol, 'protocol'],
  ])('%s', async (_name, frames, code, reason) => {
    const s = await served();
    s.raw.write(...frames());
    await expectFault(s, code, reason);
    // Streams it had are failed, not left hanging.
    for (const st of s.streams) expect(st.destroyed).toBe(true);
  });

  test('a WINDOW_UPDATE flagged SYN opens no stream: its request reaches nothing, the session ends (protocol)', async () => {
    const s = await served();
    s.raw.write(frame(FrameType.WindowUpdate, Flag.Syn, 0, 1, 40_000), data(1, Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    await expectFault(s, MuxCode.Protocol, 'protocol');
    expect(s.streams).toEqual([]);
  });

  test('the same over mTLS: DATA beyond the window ends the session with GOAWAY FLOW_CONTROL', async () => {
    const s = await served({ transport: 'tls' });
    s.raw.write(syn(1, Buffer.alloc(STREAM_WINDOW)), data(1, Buffer.alloc(10)));
    await expectFault(s, MuxCode.FlowControl, 'flow_control');
    expect(s.errors).toHaveLength(1);
  });

  test('frames split at every byte boundary are parsed the same (a fault is still found)', async () => {
    const s = await served();
    const bytes = Buffer.concat([syn(1, Buffer.from('hello')), data(2, Buffer.from('x'))]);
    for (const b of bytes) {
      s.raw.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    await expectFault(s, MuxCode.Protocol, 'stream_id');
  });

  test('a truncated header, then the peer closes: the session ends (closed), nothing thrown', async () => {
    const s = await served();
    s.raw.write(syn(1, Buffer.from('ok')), syn(3).subarray(0, 5));
    await until('the stream opened', () => s.streams.length === 1);
    s.raw.socket.end();
    await until('the session ended', () => s.ended.length > 0);
    expect(s.ended).toEqual(['closed']);
    expect(s.streams[0]!.destroyed).toBe(true);
  });

  test('a truncated DATA payload, then the peer closes: the session ends (closed)', async () => {
    const s = await served();
    s.raw.write(syn(1), frame(FrameType.Data, 0, 0, 1, 1000), Buffer.alloc(10));
    s.raw.socket.end();
    await until('the session ended', () => s.ended.length > 0);
    expect(s.ended).toEqual(['closed']);
  });

  test('after a fault the server takes new sessions as before', async () => {
    const bad = await served();
    bad.raw.write(frame(42, 0, 0, 0, 0));
    await expectFault(bad, MuxCode.Protocol, 'protocol');
    const good = await served();
    good.raw.write(syn(1, Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    await until('a stream opened on the new session', () => good.streams.length === 1);
    expect(good.ended).toEqual([]);
  });
});

describe('floods', () => {
  test('PINGs are answered, up to the budget of empty frames per second; past it the session ends (FLOOD)', async () => {
    const s = await served();
    // 1,500 PINGs in batches, each batch answered before the next.
    for (let batch = 0; batch < 10; batch++) {
      s.raw.write(empties(150, () => frame(FrameType.Ping, 0, 0, 0, batch)));
      await until(`batch ${batch} answered`, () => s.raw.count((f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) !== 0) === 150 * (batch + 1));
    }
    expect(s.ended).toEqual([]);
    s.raw.write(empties(1_000, () => frame(FrameType.Ping, 0, 0, 0, 99)));
    await expectFault(s, MuxCode.Flood, 'flood');
    const acks = s.raw.count((f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) !== 0);
    expect(acks).toBeGreaterThanOrEqual(1_500);
    expect(acks).toBeLessThanOrEqual(2_000);
  });

  test('the budget renews each second: 1,500 PINGs a second, for four seconds, is no flood', async () => {
    const s = await served();
    for (let round = 0; round < 4; round++) {
      s.raw.write(empties(1_500, () => frame(FrameType.Ping, 0, 0, 0, round)));
      await until(`round ${round} answered`, () => s.raw.count((f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) !== 0) === 1_500 * (round + 1));
      s.clock.now += 1_000;
    }
    expect(s.ended).toEqual([]);
  });

  test('a sweep does not renew it: 1,500 PINGs between each of two sweeps within one second are a flood', async () => {
    const s = await served();
    s.raw.write(empties(1_500, () => frame(FrameType.Ping, 0, 0, 0, 1)));
    await until('answered', () => s.raw.count((f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) !== 0) === 1_500);
    s.session.tick(60_000);
    s.clock.now += 500;
    s.raw.write(empties(1_500, () => frame(FrameType.Ping, 0, 0, 0, 2)));
    await expectFault(s, MuxCode.Flood, 'flood');
  });

  test('a peer that reads nothing while its PINGs are answered ends at the write backlog, and its connection is let go', async () => {
    const s = await served();
    s.raw.socket.pause(); // the peer never reads our answers
    // 1,000 PINGs a second (within the budget), answers piling up unread until more than 16 MiB wait.
    const batch = empties(1_000, () => frame(FrameType.Ping, 0, 0, 0, 1));
    const socket = s.session.socket;
    for (let i = 0; i < 5_000 && !s.session.ended && socket.writableLength < 18 * 2 ** 20; i++) {
      s.clock.now += 1_000; // the budget renews: only the write backlog can stop it
      const read = s.nextRead();
      s.raw.write(batch);
      await read;
      await new Promise((r) => setImmediate(r)); // the answers are flushed
    }
    expect(s.ended).toEqual(['write_backlog']);
    // Not kept open with its 16 MiB backlog for a peer that may never read it.
    await until('the server destroyed the connection', () => socket.destroyed, 5_000);
  }, 30_000);

  test('SYNs past the stream limit are refused one by one (RST REFUSED) and the session goes on', async () => {
    const s = await served({ maxStreams: 2 });
    s.raw.write(syn(1), syn(3), syn(5), syn(7));
    await until('2 refusals', () => s.raw.count((f) => (f.flags & Flag.Rst) !== 0) === 2);
    const refused = s.raw.frames.filter((f) => (f.flags & Flag.Rst) !== 0);
    expect(refused.map((f) => [f.stream, f.code])).toEqual([
      [5, MuxCode.Refused],
      [7, MuxCode.Refused],
    ]);
    expect(s.streams.map((x) => x.id)).toEqual([1, 3]);
    // Late frames for a refused stream are dropped, not a fault.
    s.raw.write(data(5, Buffer.from('late')));
    s.raw.write(frame(FrameType.Ping, 0, 0, 0, 1));
    await s.raw.next('PING answer', (f) => f.type === FrameType.Ping);
    expect(s.ended).toEqual([]);
  });

  test('a flood of SYNs that are refused (past the limit) is bounded like any frame that carries nothing', async () => {
    const s = await served({ maxStreams: 1 });
    // Each SYN past the limit costs the server an RST: 3,000 of them in one go is a flood, not 3,000 answers.
    let id = 1;
    s.raw.write(
      syn(1),
      empties(3_000, () => {
        id += 2;
        return syn(id);
      }),
    );
    await until('the session ended, or every SYN answered', () => s.session.ended || s.raw.count((f) => (f.flags & Flag.Rst) !== 0) >= 3_000, 5_000);
    expect(s.ended).toEqual(['flood']);
  });

  // Rapid reset by another name: streams opened and ended with nothing on them. The stream limit is high here so
  // that no SYN is refused (refusals count on their own): only the empty streams themselves can end the session.
  test.each<[string, (id: number) => Buffer]>([
    ['SYN|FIN in one frame', (id) => frame(FrameType.Data, Flag.Syn | Flag.Fin, 0, id, 0)],
    ['an empty SYN, then an empty FIN', (id) => Buffer.concat([syn(id), frame(FrameType.Data, Flag.Fin, 0, id, 0)])],
    ['a SYN with one byte, then FIN before any answer', (id) => Buffer.concat([syn(id, Buffer.from('G')), frame(FrameType.Data, Flag.Fin, 0, id, 0)])],
    ['a whole request and FIN in one frame, before any answer', (id) => frame(FrameType.Data, Flag.Syn | Flag.Fin, 0, id, 18, Buffer.from('GET / HTTP/1.1\r\n\r\n'))],
  ])('streams opened and ended empty, thousands in one go, end the session as a flood: %s', async (_name, openClose) => {
    const s = await served({ maxStreams: 5_000 });
    let id = -1;
    s.raw.write(
      empties(3_000, () => {
        id += 2;
        return openClose(id);
      }),
    );
    await expectFault(s, MuxCode.Flood, 'flood');
    expect(s.streams.length).toBeLessThan(3_000);
  });

  test('streams that carry a request, get their answer and then end with FIN are no flood, thousands of them', async () => {
    const s = await served({ maxStreams: 5_000, answer: true });
    const ids = Array.from({ length: 3_000 }, (_, i) => 2 * i + 1);
    s.raw.write(Buffer.concat(ids.map((id) => Buffer.concat([syn(id), data(id, Buffer.from('GET / HTTP/1.1\r\n\r\n'))]))));
    await until('every answer read', () => s.raw.count((f) => f.type === FrameType.Data && f.length > 0) >= 3_000 || s.session.ended, 10_000);
    s.raw.write(Buffer.concat(ids.map((id) => frame(FrameType.Data, Flag.Fin, 0, id, 0))));
    await until('every stream ended', () => s.streams.every((st) => st.remoteEnded) || s.session.ended, 5_000);
    expect(s.ended).toEqual([]);
    expect(s.session.ended).toBe(false);
  });

  test('streams answered only with an interim 100 Continue, then ended by the peer, are a flood too (a 1xx is no answer)', async () => {
    const s = await served({ maxStreams: 5_000, answer: 'interim' });
    const ids = Array.from({ length: 3_000 }, (_, i) => 2 * i + 1);
    s.raw.write(Buffer.concat(ids.map((id) => syn(id, Buffer.from('POST / HTTP/1.1\r\ncontent-length: 100\r\nexpect: 100-continue\r\n\r\n')))));
    await until('the interim answers read', () => s.raw.count((f) => f.type === FrameType.Data && f.length > 0) >= 2_500 || s.session.ended, 10_000);
    s.raw.write(Buffer.concat(ids.map((id) => frame(FrameType.Data, Flag.Fin, 0, id, 0))));
    await expectFault(s, MuxCode.Flood, 'flood');
  });

  test('a body cut into 1-byte DATA frames reaches the stream as one payload per read, not one per byte', async () => {
    const s = await served();
    s.raw.write(syn(1));
    await until('the stream opened', () => s.streams.length === 1);
    const st = s.streams[0]!;
    let deliveries = 0;
    let bytes = 0;
    st.on('data', (d: Buffer) => {
      deliveries++;
      bytes += d.length;
    });
    st.resume();
    s.raw.write(Buffer.concat(Array.from({ length: 4_096 }, (_, i) => data(1, Buffer.from([0x61 + (i % 26)])))));
    await until('every byte arrived', () => bytes === 4_096);
    expect(deliveries).toBeLessThan(64); // one per socket read (a few); it was one per frame (4,096)
    expect(s.ended).toEqual([]);
  });

  test('rapid reset: streams opened and reset at once, thousands in one go, end the session as a flood', async () => {
    const s = await served();
    let id = -1;
    s.raw.write(
      empties(3_000, () => {
        id += 2;
        return Buffer.concat([syn(id), frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, id, 0)]);
      }),
    );
    await until('all handled or the session ended', () => s.session.ended || s.streams.length === 3_000, 5_000);
    expect(s.ended).toEqual(['flood']);
    expect(s.streams.length).toBeLessThan(3_000);
  });
});

describe('drain against a raw dialer', () => {
  test('GOAWAY names the last stream served in its stream field, then a PING follows', async () => {
    const s = await served();
    s.raw.write(syn(1, Buffer.from('a')), syn(3, Buffer.from('b')));
    await until('streams 1 and 3 open', () => s.streams.length === 2);
    s.session.drain();
    const goaway = await s.raw.next('GOAWAY', (f) => f.type === FrameType.GoAway);
    // docs/transport.md and mux-frame.ts: bytes 4–7 (stream) carry the last stream id for GOAWAY.
    expect({ code: goaway.code, stream: goaway.stream }).toEqual({ code: MuxCode.None, stream: 3 });
    await s.raw.next('drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
  });

  test('a stream opened before the drain PING is answered is served; one opened after it is refused', async () => {
    const s = await served();
    s.raw.write(syn(1, Buffer.from('a')));
    await until('stream 1 open', () => s.streams.length === 1);
    s.session.drain();
    const ping = await s.raw.next('drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
    // A SYN the dialer sent before it read the GOAWAY (in flight) is still served.
    s.raw.write(syn(3, Buffer.from('b')));
    await until('stream 3 served', () => s.streams.length === 2);
    s.raw.write(frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length));
    // Once the PING is answered the dialer has seen the GOAWAY: a stream it opens now is refused (docs: GOAWAY
    // "serves none beyond the id it names"), else a dialer could keep a draining session open indefinitely.
    s.raw.write(syn(5, Buffer.from('c')));
    await until('stream 5 answered or served', () => s.raw.frames.some((f) => f.stream === 5) || s.streams.length === 3, 5_000);
    expect(s.streams.map((x) => x.id)).toEqual([1, 3]);
    expect(s.raw.frames.find((f) => f.stream === 5)).toMatchObject({ flags: Flag.Rst, code: MuxCode.Refused });
  });

  test('the session closes when the last stream ends after the PING is answered', async () => {
    const s = await served();
    s.raw.write(syn(1, Buffer.from('a')));
    await until('stream 1 open', () => s.streams.length === 1);
    s.session.drain();
    const ping = await s.raw.next('drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
    s.raw.write(frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length));
    await new Promise((r) => setTimeout(r, 50));
    expect(s.session.ended).toBe(false); // stream 1 is still open
    s.raw.write(frame(FrameType.Data, Flag.Rst, MuxCode.Cancel, 1, 0));
    await until('closed', () => s.raw.closed);
    expect(s.ended).toEqual(['closed']);
  });
});

test('a client-role session ends at a frame for an even stream id it never opened, below the ids it did open', async () => {
  for (const bad of [data(2, Buffer.from('abc')), frame(FrameType.Data, Flag.Fin, 0, 4, 0), frame(FrameType.WindowUpdate, 0, 0, 2, 100)]) {
    const pair = await tcpPair();
    pairs.push(pair);
    const ended: MuxEndReason[] = [];
    const session = new MuxSession(pair.client, { role: 'client', nowMs: () => Date.now(), maxStreams: 0, keepaliveIntervalMs: 60_000, keepaliveTimeoutMs: 60_000, onEnd: (r) => ended.push(r) });
    const raw = new RawPeer(pair.server);
    raw.write(frame(FrameType.Settings, 0, 0, 0, 10));
    await until('ready', () => session.ready);
    for (let i = 0; i < 3; i++) session.open().on('error', () => undefined); // streams 1, 3, 5
    await raw.next('the third SYN', (f) => f.stream === 5);
    raw.write(bad);
    const goaway = await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway);
    expect(goaway.code).toBe(MuxCode.Protocol);
    expect(ended).toEqual(['stream_id']);
  }
});

test('a frame sent a byte at a time is joined once, not once per byte (linear work, not quadratic)', async () => {
  const s = await served();
  const bytes = syn(1, Buffer.alloc(4_096, 0x61));
  const concat = vi.spyOn(Buffer, 'concat');
  try {
    for (let i = 0; i < bytes.length; i += 1) {
      s.raw.write(bytes.subarray(i, i + 1));
      if (i % 64 === 0) await s.nextRead();
    }
    await until('the stream opened', () => s.streams.length === 1);
    // Before: one concat per read while the frame was partial (at least one per 64 bytes here). Allow a few.
    expect(concat.mock.calls.length).toBeLessThan(16);
  } finally {
    concat.mockRestore();
  }
  let got = 0;
  s.streams[0]!.on('data', (d: Buffer) => {
    got += d.length;
  });
  s.streams[0]!.resume();
  await until('its 4 KiB read', () => got === 4_096);
  expect(s.ended).toEqual([]);
});

test('a client-role session refuses a stream the server tries to open, and SETTINGS allowing no stream', async () => {
  for (const bad of [frame(FrameType.Data, Flag.Syn, 0, 2, 0), frame(FrameType.Settings, 0, 0, 0, 0), frame(FrameType.WindowUpdate, Flag.Syn, 0, 2, 100)]) {
    const pair = await tcpPair();
    pairs.push(pair);
    const ended: MuxEndReason[] = [];
    const session = new MuxSession(pair.client, { role: 'client', nowMs: () => Date.now(), maxStreams: 0, keepaliveIntervalMs: 60_000, keepaliveTimeoutMs: 60_000, onEnd: (r) => ended.push(r) });
    const raw = new RawPeer(pair.server);
    raw.write(frame(FrameType.Settings, 0, 0, 0, 10), bad);
    const goaway = await raw.next('GOAWAY', (f) => f.type === FrameType.GoAway);
    expect(goaway.code).toBe(MuxCode.Protocol);
    expect(session.ended).toBe(true);
    expect(ended).toHaveLength(1);
  }
});
