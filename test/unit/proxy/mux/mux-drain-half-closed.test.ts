// Streams that only wait for the peer's FIN, on a draining serving session (outside audit 56b F2): a stream whose
// side this proxy ended (its answer complete, FIN sent) kept its slot until the peer FINed back, so a peer that never
// does held a SIGTERM drain to drainTimeout. Now a draining server resets such a stream with NO_ERROR (RFC 9113 8.1):
// those done when the drain starts and those done during it, never a half-open tunnel that still reads, never
// outside a drain. The dialing side takes such a reset after the answer's FIN as the end of what it sends, and keeps
// what it was sent: a paused reader still reads the whole answer, even after the session has closed.
import { afterEach, describe, expect, test } from 'vitest';
import { Flag, FrameType, MuxCode } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { readBody, sha256 } from '../../../helpers/mux-sessions.js';
import { RawPeer, type SocketPair, frame, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

const ANSWER = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
const syn = (id: number, payload?: Buffer) => frame(FrameType.Data, Flag.Syn, 0, id, payload?.length ?? 0, payload);
const isReset = (id: number) => (f: { type: number; flags: number; stream: number }) => f.type === FrameType.Data && (f.flags & Flag.Rst) !== 0 && f.stream === id;

/** A serving session and a raw dialer that never FINs; each stream is handed to `onStream`. */
async function served(onStream: (s: MuxStream) => void): Promise<{ session: MuxSession; raw: RawPeer; streams: MuxStream[]; ended: MuxEndReason[] }> {
  const pair = await tcpPair();
  pairs.push(pair);
  const streams: MuxStream[] = [];
  const ended: MuxEndReason[] = [];
  const session = new MuxSession(pair.server, {
    role: 'server',
    nowMs: () => Date.now(),
    maxStreams: 100,
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
  return { session, raw, streams, ended };
}

/** The raw dialer answers the drain PING: it has read the GOAWAY. */
async function answerDrainPing(raw: RawPeer): Promise<void> {
  const ping = await raw.next('the drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
  raw.write(frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length));
}

describe('a draining server does not wait for the FIN of a peer that never sends it', () => {
  test('streams answered and ended before the drain are reset with NO_ERROR after their FIN; the session closes', async () => {
    const s = await served((st) => {
      st.write(ANSWER);
      st.end();
    });
    const ids = [1, 3, 5, 7, 9];
    s.raw.write(...ids.map((id) => syn(id, Buffer.from('GET / HTTP/1.1\r\nconnection: close\r\n\r\n'))));
    for (const id of ids) await s.raw.next(`the FIN of ${id}`, (f) => f.stream === id && (f.flags & Flag.Fin) !== 0);
    expect(s.session.streamCount).toBe(ids.length); // outside a drain they keep their slots until the peer's FIN
    expect(s.raw.count((f) => (f.flags & Flag.Rst) !== 0)).toBe(0);
    s.session.drain();
    for (const id of ids) expect((await s.raw.next(`the reset of ${id}`, isReset(id))).code).toBe(MuxCode.None);
    await answerDrainPing(s.raw);
    await until('the session closed', () => s.raw.closed);
    expect(s.ended).toEqual(['closed']);
    // Each reset came after the stream's FIN: its answer was whole.
    for (const id of ids) {
      const order = s.raw.frames.filter((f) => f.type === FrameType.Data && f.stream === id).map((f) => (f.flags & Flag.Rst ? 'rst' : f.flags & Flag.Fin ? 'fin' : 'data'));
      expect(order.slice(-2)).toEqual(['fin', 'rst']);
    }
  });

  test('a stream whose answer ends during the drain is reset with NO_ERROR right after its FIN', async () => {
    let late: MuxStream | undefined;
    const s = await served((st) => {
      late = st;
    });
    s.raw.write(syn(1, Buffer.from('GET /slow HTTP/1.1\r\n\r\n')));
    await until('stream 1 open', () => late !== undefined);
    s.session.drain();
    await answerDrainPing(s.raw);
    late!.write(ANSWER);
    late!.end();
    expect((await s.raw.next('the reset of 1', isReset(1))).code).toBe(MuxCode.None);
    await until('the session closed', () => s.raw.closed);
  });

  test('a half-open tunnel (allowHalfOpen) is not reset: it still reads what the peer sends after its FIN', async () => {
    const got: Buffer[] = [];
    const s = await served((st) => {
      st.allowHalfOpen = true;
      st.on('data', (d: Buffer) => got.push(d));
      st.write(Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n'));
      st.end();
    });
    s.raw.write(syn(1, Buffer.from('GET /ws HTTP/1.1\r\nupgrade: x\r\n\r\n')));
    await s.raw.next('the FIN of 1', (f) => f.stream === 1 && (f.flags & Flag.Fin) !== 0);
    s.session.drain();
    await answerDrainPing(s.raw);
    s.raw.write(frame(FrameType.Data, 0, 0, 1, 5, Buffer.from('still')));
    await until('the tunnel read on', () => Buffer.concat(got).toString().endsWith('still'));
    expect(s.raw.count(isReset(1))).toBe(0);
    expect(s.session.ended).toBe(false);
  });
});

describe('the dialing side keeps an answer the server reset with NO_ERROR after its FIN', () => {
  test('a paused reader reads the whole answer after the reset and the end of the session', async () => {
    const pair = await tcpPair();
    pairs.push(pair);
    const ended: MuxEndReason[] = [];
    const client = new MuxSession(pair.client, { role: 'client', nowMs: () => Date.now(), maxStreams: 0, keepaliveIntervalMs: 60_000, keepaliveTimeoutMs: 60_000, onEnd: (r) => ended.push(r) });
    const raw = new RawPeer(pair.server);
    raw.write(frame(FrameType.Settings, 0, 0, 0, 10));
    await until('ready', () => client.ready);
    const st = client.open();
    const errors: Error[] = [];
    st.on('error', (e: Error) => errors.push(e));
    st.pause(); // a slow client: what comes is held
    st.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await raw.next('the request', (f) => f.stream === 1 && f.length > 0);
    const answer = Buffer.alloc(60_000, 0x5a); // within the window: all of it arrives and is held
    raw.write(frame(FrameType.Data, 0, 0, 1, answer.length, answer), frame(FrameType.Data, Flag.Fin, 0, 1, 0), frame(FrameType.Data, Flag.Rst, MuxCode.None, 1, 0));
    await until('the reset read', () => client.streamCount === 0);
    // The server closes once nothing is left: the held answer is the stream's own.
    raw.socket.destroy();
    await until('the session ended', () => client.ended);
    const body = await readBody(st);
    expect(body).toEqual({ bytes: answer.length, sha256: sha256(answer) });
    expect(errors).toEqual([]);
    expect(raw.count((f) => f.stream === 1 && (f.flags & Flag.Rst) !== 0)).toBe(0); // no reset sent back
  });
});
