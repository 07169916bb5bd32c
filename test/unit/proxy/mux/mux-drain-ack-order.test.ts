// The answer to a draining server's PING closes the streams it finds idle (the inbound listener drains their HTTP/1.1
// sessions then). A request the dialer sent before it read the GOAWAY comes before that answer on the wire, often in
// the same read, and its DATA waits in the turn's runs (data-run.ts) until after the poll phase: it must reach its
// stream before the answer acts, or the stream is closed as idle under it and the dialer answers 502 (seen under
// load in mux-transport-fallback's drain case). One write here holds both, so the order is the session's, not timing.
import { afterEach, expect, test } from 'vitest';
import { Flag, FrameType } from '../../../../proxy/src/mux/mux-frame.js';
import { MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { frame, RawPeer, type SocketPair, tcpPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

test('DATA read before the answer to the drain PING reaches its stream before what waited for the answer runs', async () => {
  const pair = await tcpPair();
  pairs.push(pair);
  const streams: MuxStream[] = [];
  const got = new Map<number, string>();
  /** What each stream had received when the session told it the GOAWAY was seen. */
  const atGoAwaySeen: [number, string][] = [];
  const session = new MuxSession(pair.server, {
    role: 'server',
    nowMs: () => 1_000_000,
    maxStreams: 8,
    keepaliveIntervalMs: 60_000,
    keepaliveTimeoutMs: 60_000,
    onStream: (s) => {
      streams.push(s);
      got.set(s.id, '');
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => got.set(s.id, got.get(s.id)! + d.toString('latin1')));
      session.whenGoAwaySeen(() => atGoAwaySeen.push([s.id, got.get(s.id)!]));
    },
  });
  const raw = new RawPeer(pair.client);
  await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
  raw.write(Buffer.concat([frame(FrameType.Data, Flag.Syn, 0, 1, 0), frame(FrameType.Data, Flag.Syn, 0, 3, 0)]));
  await until('streams 1 and 3 open', () => streams.length === 2);
  session.drain();
  const ping = await raw.next('the drain PING', (f) => f.type === FrameType.Ping && (f.flags & Flag.Ack) === 0);
  // Two requests, then the answer, in one write: one read on the server.
  const request = (id: number) => frame(FrameType.Data, 0, 0, id, 18, Buffer.from(`GET /${id} HTTP/1.1\r\n`.padEnd(18, 'x')));
  raw.write(Buffer.concat([request(1), request(3), frame(FrameType.Ping, Flag.Ack, 0, 0, ping.length)]));
  await until('what waited for the GOAWAY to be seen ran', () => atGoAwaySeen.length === 2);
  expect(atGoAwaySeen.sort()).toEqual([
    [1, 'GET /1 HTTP/1.1\r\nx'],
    [3, 'GET /3 HTTP/1.1\r\nx'],
  ]);
});
