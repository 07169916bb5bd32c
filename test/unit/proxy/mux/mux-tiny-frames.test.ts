// Tiny DATA frames against a serving MuxSession (outside audit 39b, F2): a peer that cuts its bodies into 1-byte
// frames, alternating them across streams (or between window updates, or with a flag that means nothing on DATA, or
// each round in its own TLS record), makes the session hand each stream at most one payload per event-loop turn,
// not one per frame: deliveries are counted, not timed. Honest small writes on many streams (an event stream, a
// 1-byte body) arrive whole and in order, and the session is not cut.
import { afterEach, describe, expect, test } from 'vitest';
import { Flag, FrameType, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxEndReason, MuxSession } from '../../../../proxy/src/mux/mux-session.js';
import type { MuxStream } from '../../../../proxy/src/mux/mux-stream.js';
import { readBody, sessionPair, sha256, writeBody } from '../../../helpers/mux-sessions.js';
import { RawPeer, type SocketPair, frame, tcpPair, tlsPair } from '../../../helpers/mux-wire.js';
import { until } from '../../../helpers/until.js';

const pairs: SocketPair[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
  for (const c of closers.splice(0)) await c();
});

const syn = (id: number) => frame(FrameType.Data, Flag.Syn, 0, id, 0);
const byte = (id: number, b: number, flags = 0) => frame(FrameType.Data, flags, 0, id, 1, Buffer.from([b]));

interface Case {
  readonly transport: 'tcp' | 'tls';
  readonly streams: number;
  readonly bytesPerStream: number;
  /** The writes of the raw peer: each one a TLS record (or a few) of its own. */
  readonly writes: (ids: number[]) => Buffer[];
}

const letter = (i: number) => 0x61 + (i % 26);
const roundRobin = (ids: number[], n: number, flags = 0) => Array.from({ length: n }, (_, i) => Buffer.concat(ids.map((id) => byte(id, letter(i), flags))));

describe('1-byte DATA frames cost one delivery per stream per turn, not one per frame', () => {
  test.each<[string, Case]>([
    ['round-robin across 100 streams, in one write', { transport: 'tcp', streams: 100, bytesPerStream: 200, writes: (ids) => [Buffer.concat(roundRobin(ids, 200))] }],
    ['round-robin across 100 streams, each round its own TLS record', { transport: 'tls', streams: 100, bytesPerStream: 200, writes: (ids) => roundRobin(ids, 200) }],
    ['alternating between 2 streams, with a flag that means nothing on DATA (ACK)', { transport: 'tcp', streams: 2, bytesPerStream: 5_000, writes: (ids) => [Buffer.concat(roundRobin(ids, 5_000, Flag.Ack))] }],
    [
      // Credit for bytes the server never sent counts against the flood budget (audit 56b F1): 1,334 stay within it.
      'one stream, a half-window WINDOW_UPDATE after every third byte',
      { transport: 'tcp', streams: 1, bytesPerStream: 4_000, writes: (ids) => [Buffer.concat(Array.from({ length: 4_000 }, (_, i) => (i % 3 === 0 ? Buffer.concat([byte(ids[0]!, letter(i)), frame(FrameType.WindowUpdate, 0, 0, ids[0]!, STREAM_WINDOW / 2)]) : byte(ids[0]!, letter(i)))))] },
    ],
  ])('%s', async (_name, c) => {
    const pair = c.transport === 'tls' ? await tlsPair() : await tcpPair();
    pairs.push(pair);
    const ended: MuxEndReason[] = [];
    const streams: MuxStream[] = [];
    let deliveries = 0;
    const got = new Map<number, Buffer[]>();
    const session = new MuxSession(pair.server, {
      role: 'server',
      nowMs: () => 1_000_000, // one second of the session's clock: every counted frame falls in one budget
      maxStreams: 100,
      keepaliveIntervalMs: 60_000,
      keepaliveTimeoutMs: 60_000,
      onStream: (s) => {
        streams.push(s);
        got.set(s.id, []);
        s.on('data', (d: Buffer) => {
          deliveries++;
          got.get(s.id)!.push(d);
        });
      },
      onEnd: (r) => ended.push(r),
    });
    const raw = new RawPeer(pair.client);
    await raw.next('SETTINGS', (f) => f.type === FrameType.Settings);
    const ids = Array.from({ length: c.streams }, (_, i) => 2 * i + 1);
    raw.write(...ids.map(syn));
    await until('every stream opened', () => streams.length === c.streams);
    for (const w of c.writes(ids)) raw.write(w);
    const frames = c.streams * c.bytesPerStream;
    const total = () => [...got.values()].reduce((n, parts) => n + parts.reduce((m, p) => m + p.length, 0), 0);
    await until('every byte delivered', () => total() === frames || session.ended, 15_000, 10);
    expect(ended).toEqual([]);
    const want = Buffer.from(Array.from({ length: c.bytesPerStream }, (_, i) => letter(i)));
    for (const id of ids) expect(Buffer.concat(got.get(id)!).equals(want)).toBe(true);
    // One delivery per frame before the fix (every frame of the first two cases had a stream of its own between
    // reads, the last two broke each run with a frame that carries no data for it).
    expect(deliveries).toBeLessThanOrEqual(frames / 10);
  }, 30_000);
});

describe('honest small writes are delivered whole and in order, and are no flood', () => {
  test('50 streams each trickling 40 small events, a 1-byte request body among them', async () => {
    const pair = await sessionPair();
    closers.push(() => pair.close());
    const n = 50;
    const clientStreams = Array.from({ length: n }, () => pair.client.open());
    const served: Promise<{ bytes: number; sha256: string }>[] = [];
    for (let i = 0; i < n; i++) served.push(pair.nextStream().then(readBody));
    const sent = clientStreams.map(() => [] as Buffer[]);
    for (let round = 0; round < 40; round++) {
      clientStreams.forEach((s, i) => {
        const chunk = i === 0 && round === 0 ? Buffer.from('x') : Buffer.from(`data: ${i}/${round}\n\n`);
        sent[i]!.push(chunk);
        s.write(chunk);
      });
      await new Promise((r) => setTimeout(r, 2)); // events a few ms apart, as a server-sent stream writes them
    }
    for (const s of clientStreams) await writeBody(s, Buffer.alloc(0));
    const results = await Promise.all(served);
    for (const [i, r] of results.entries()) expect(r.sha256).toBe(sha256(Buffer.concat(sent[i]!)));
    expect(pair.ended).toEqual({ client: [], server: [] });
  }, 30_000);
});
