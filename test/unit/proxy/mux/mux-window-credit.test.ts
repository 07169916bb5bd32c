// Window credit that restores nothing this side spent (outside audit 56b F1): a WINDOW_UPDATE counts against the flood
// budget unless it pays back bytes this side sent on that stream and the peer has not credited yet, whatever its size.
// Before, only credits below half a window counted: 6.5 million credits of exactly 32,768 over 100 idle streams in
// one session were taken, a third of a core, never cut. Here, on a serving session (a raw dialer) and a dialing one
// (a raw server): credits of 1, 32,767, 32,768 and 65,535 on idle streams and on a stream whose answer was all sent
// end the session as a flood past the budget, and below it are no fault; honest traffic is never cut: bodies of many
// MiB both ways, slow readers among them, on a clock that never renews the budget, with thousands of credits a side.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { EMPTY_FRAME_BUDGET } from '../../../../proxy/src/mux/flood-budget.js';
import { Flag, FrameType, MuxCode, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession, type MuxSessionOptions } from '../../../../proxy/src/mux/mux-session.js';
import { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { type SessionPair, readBody, sessionPair, sha256, writeBody } from '../../../helpers/mux-sessions.js';
import { RawPeer, type SocketPair, frame, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: (SocketPair | SessionPair)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const p of pairs.splice(0)) await p.close();
});

const INCREMENTS = [1, STREAM_WINDOW / 2 - 1, STREAM_WINDOW / 2, STREAM_WINDOW - 1];
const syn = (id: number) => frame(FrameType.Data, Flag.Syn, 0, id, 0);
const credit = (id: number, n: number) => frame(FrameType.WindowUpdate, 0, 0, id, n);
/** `n` credits of `increment`, round-robin over `ids`, in one write. */
const credits = (ids: number[], n: number, increment: number) => Buffer.concat(Array.from({ length: n }, (_, k) => credit(ids[k % ids.length]!, increment)));
const odd = (n: number) => Array.from({ length: n }, (_, k) => 2 * k + 1);

interface Side {
  readonly session: MuxSession;
  readonly raw: RawPeer;
  readonly ended: MuxEndReason[];
}

/** A session of `role` on one end of a fresh loopback pair, the raw peer on the other, ready; its clock never moves. */
async function side(role: 'server' | 'client', onStream?: (s: MuxStream) => void): Promise<Side> {
  const pair = await tcpPair();
  pairs.push(pair);
  const ended: MuxEndReason[] = [];
  const o: MuxSessionOptions = { role, nowMs: () => 1_000_000, maxStreams: role === 'server' ? 100 : 0, keepaliveIntervalMs: 60_000, keepaliveTimeoutMs: 60_000, onEnd: (r) => ended.push(r), onStream };
  const session = new MuxSession(role === 'server' ? pair.server : pair.client, o);
  const raw = new RawPeer(role === 'server' ? pair.client : pair.server);
  if (role === 'server') await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  else {
    raw.write(frame(FrameType.Settings, 0, 0, 0, 100));
    await until('the dialer ready', () => session.ready);
  }
  return { session, raw, ended };
}

async function expectFlood(s: Side): Promise<void> {
  const goaway = await s.raw.next('GOAWAY', (f) => f.type === FrameType.GoAway);
  expect(goaway.code).toBe(MuxCode.Flood);
  await until('the connection closed', () => s.raw.closed);
  expect(s.ended).toEqual(['flood']);
}

/** The session still answers a PING: it took what came without a fault. */
async function expectServing(s: Side): Promise<void> {
  s.raw.write(frame(FrameType.Ping, 0, 0, 0, 4242));
  await s.raw.next('the PING answered', (f) => f.type === FrameType.Ping && f.length === 4242);
  expect(s.ended).toEqual([]);
}

describe('a credit that pays back nothing this side sent counts against the flood budget', () => {
  test.each(INCREMENTS)('serving side, 100 idle streams, credits of %i: a flood past the budget', async (increment) => {
    const s = await side('server', (st) => st.pause());
    s.raw.write(...odd(100).map(syn), credits(odd(100), EMPTY_FRAME_BUDGET + 100, increment));
    await expectFlood(s);
  });

  test.each(INCREMENTS)('serving side, a stream whose answer was all sent, credits of %i: a flood past the budget', async (increment) => {
    const answer = 4 * STREAM_WINDOW;
    const s = await side('server', (st) => {
      st.pause();
      st.write(Buffer.alloc(answer, 0x61));
    });
    s.raw.write(syn(1));
    await s.raw.next('the first window of the answer', () => s.raw.count((f) => f.type === FrameType.Data && f.stream === 1 && f.length > 0) > 0);
    // The first credits release the rest of the answer (they pay for bytes sent); the others restore nothing spent.
    s.raw.write(credits([1], EMPTY_FRAME_BUDGET + 100, increment));
    await expectFlood(s);
  });

  test.each(INCREMENTS)('dialing side, 10 idle streams, credits of %i from the server: a flood past the budget', async (increment) => {
    const s = await side('client');
    for (let i = 0; i < 10; i++) s.session.open().on('error', () => undefined);
    await s.raw.next('the tenth SYN', (f) => f.stream === 19);
    s.raw.write(credits(odd(10), EMPTY_FRAME_BUDGET + 100, increment));
    await expectFlood(s);
  });

  test.each(INCREMENTS)('within the budget they are no fault: credits of %i on idle streams, both sides', async (increment) => {
    const served = await side('server', (st) => st.pause());
    served.raw.write(...odd(100).map(syn), credits(odd(100), EMPTY_FRAME_BUDGET - 100, increment));
    await expectServing(served);
    const dialer = await side('client');
    for (let i = 0; i < 10; i++) dialer.session.open().on('error', () => undefined);
    dialer.raw.write(credits(odd(10), EMPTY_FRAME_BUDGET - 100, increment));
    await expectServing(dialer);
  });
});

describe('honest traffic is never cut', () => {
  test('bodies of 8 MiB each way on 12 streams, half of the readers slow, on a clock that never renews the budget', async () => {
    const credited = vi.spyOn(MuxStream.prototype, 'onWindowUpdate');
    const MiB = 1 << 20;
    const N = 12;
    const slow = (s: MuxStream, k: number) => {
      // Every other stream's reader stops for a few milliseconds now and then: its credits come late and larger.
      if (k % 2 === 0) return;
      let n = 0;
      s.on('data', () => {
        if (++n % 16 !== 0) return;
        s.pause();
        setTimeout(() => s.resume(), 2);
      });
    };
    const uploads = new Map<number, Promise<{ bytes: number; sha256: string }>>();
    const p = await sessionPair({
      transport: 'tcp',
      nowMs: () => 1_000_000,
      onStream: (s) => {
        s.allowHalfOpen = true;
        slow(s, (s.id - 1) / 2);
        uploads.set(s.id, readBody(s));
        void writeBody(s, Buffer.alloc(8 * MiB, s.id & 0xff));
      },
    });
    pairs.push(p);
    const bodies = Array.from({ length: N }, () => randomBytes(8 * MiB));
    const streams = bodies.map(() => {
      const s = p.client.open();
      s.allowHalfOpen = true;
      return s;
    });
    for (const [k, s] of streams.entries()) slow(s, k);
    const downloads = streams.map((s) => readBody(s));
    await Promise.all(streams.map((s, k) => writeBody(s, bodies[k]!)));
    const got = await Promise.all(downloads);
    for (const [k, s] of streams.entries()) {
      expect(got[k]!.sha256).toBe(sha256(Buffer.alloc(8 * MiB, s.id & 0xff)));
      expect((await uploads.get(s.id))!.sha256).toBe(sha256(bodies[k]!));
    }
    expect(p.ended).toEqual({ client: [], server: [] });
    // Thousands of credits reached each side within one second of its clock: none was counted.
    const serverStreams = new Set<unknown>(p.accepted);
    const toServer = credited.mock.contexts.filter((c) => serverStreams.has(c)).length;
    const toClient = credited.mock.contexts.length - toServer;
    expect(Math.min(toServer, toClient)).toBeGreaterThan(EMPTY_FRAME_BUDGET);
  }, 60_000);
});
