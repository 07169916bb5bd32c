// A draining server against a dialer that answers nothing after the GOAWAY (left by audit 56b): the server waits for
// the answer to its drain PING before it refuses new streams and closes idle ones (a SYN may cross the GOAWAY), so a
// dialer that never answered could keep opening streams on a drained session, and send requests on its idle ones,
// for as long as it liked. Now, past the keepalive timeout, the GOAWAY is taken as seen: what waited for it runs, and
// a stream opened from then on is refused. The peer-standing drain (a peer whose SVID expired) relies on this.
import { afterEach, expect, test } from 'vitest';
import { Flag, FrameType, MuxCode } from '../../../../proxy/src/mux/mux-frame.js';
import { MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { RawPeer, type SocketPair, frame, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

const syn = (id: number) => frame(FrameType.Data, Flag.Syn, 0, id, 1, Buffer.from('x'));
const TIMEOUT_MS = 5_000;

test('past the keepalive timeout an unanswered drain PING counts as answered: idle streams let go, new ones refused', async () => {
  const pair = await tcpPair();
  pairs.push(pair);
  const clock = { now: 1_000_000 };
  const streams: MuxStream[] = [];
  let seen = 0;
  const session = new MuxSession(pair.server, {
    role: 'server',
    nowMs: () => clock.now,
    maxStreams: 8,
    keepaliveIntervalMs: 60_000,
    keepaliveTimeoutMs: TIMEOUT_MS,
    onStream: (s) => {
      streams.push(s);
      s.on('error', () => undefined);
      s.pause();
      session.whenGoAwaySeen(() => seen++); // as the HTTP/1.1 server of an idle stream does
    },
  });
  const raw = new RawPeer(pair.client);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  raw.write(syn(1));
  await until('stream 1 open', () => streams.length === 1);
  session.drain();
  await raw.next('the drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
  // Never answered. Within the timeout a SYN is still served (it may have crossed the GOAWAY), nothing let go.
  clock.now += TIMEOUT_MS - 1_000;
  const next = session.tick(600_000);
  expect(next).toBeLessThanOrEqual(clock.now + 1_001); // the sweep comes back when the wait is over
  raw.write(syn(3));
  await until('stream 3 served', () => streams.length === 2);
  expect(seen).toBe(0);
  clock.now += 1_001;
  session.tick(600_000);
  expect(seen).toBe(2);
  raw.write(syn(5));
  const refused = await raw.next('the answer to stream 5', (f) => f.stream === 5);
  expect({ flags: refused.flags, code: refused.code }).toEqual({ flags: Flag.Rst, code: MuxCode.Refused });
  expect(streams.map((s) => s.id)).toEqual([1, 3]);
  expect(session.ended).toBe(false); // its two streams are still open: they end in their own time
});
