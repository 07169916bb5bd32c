// Two MuxSessions over a real mTLS (or TCP) connection on loopback: many interleaved streams with large bodies both
// ways (bytes checked by hash), one paused stream holding at most one window while its siblings finish, half-close
// each way, resets mid-body, the server's stream limit, GOAWAY drain, keepalive against a peer that stopped reading,
// and the writes of one event-loop turn leaving in one socket write.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { MAX_DATA_PAYLOAD, MuxCode, STREAM_WINDOW } from '../../../../proxy/src/mux/mux-frame.js';
import { type MuxStream, MuxStreamError } from '../../../../proxy/src/mux/mux-stream.js';
import { type SessionPair, readBody, sessionPair, sha256, writeBody } from '../../../helpers/mux-sessions.js';
import { until } from '../../../helpers/until.js';

const MiB = 1024 * 1024;
const pairs: SessionPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

async function pair(o: Parameters<typeof sessionPair>[0] = {}): Promise<SessionPair> {
  const p = await sessionPair(o);
  pairs.push(p);
  return p;
}

/** The error a stream emits (and that it closes with `hadError`). */
function failure(s: MuxStream): Promise<{ error: Error; hadError: boolean }> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    s.once('error', (e: Error) => {
      error = e;
    });
    s.once('close', (hadError: boolean) => resolve({ error: error ?? new Error('closed without error'), hadError }));
  });
}

/** Bytes of a server stream's body, deterministic per stream id (the client checks them by hash). */
function answerFor(id: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32BE((Math.imul(id, 2654435761) + i) >>> 0, i);
  return b;
}

describe('streams', () => {
  test('32 interleaved streams carry 1 MiB each way concurrently; every byte arrives (sha-256), then the streams are forgotten', async () => {
    const N = 32;
    const received = new Map<number, Promise<{ bytes: number; sha256: string }>>();
    const p = await pair({
      onStream: (s) => {
        s.allowHalfOpen = true; // the answer is still being written when the request's FIN arrives
        received.set(s.id, readBody(s));
        void writeBody(s, answerFor(s.id, MiB));
      },
    });
    const bodies = Array.from({ length: N }, () => randomBytes(MiB));
    const streams = bodies.map(() => {
      const s = p.client.open();
      s.allowHalfOpen = true;
      return s;
    });
    const answers = streams.map((s) => readBody(s));
    // Every stream writes at once: their frames interleave on the one connection.
    await Promise.all(streams.map((s, i) => writeBody(s, bodies[i]!)));
    const got = await Promise.all(answers);
    await until('every server stream read to its end', () => received.size === N);
    for (let i = 0; i < N; i++) {
      const s = streams[i]!;
      expect(got[i]).toEqual({ bytes: MiB, sha256: sha256(answerFor(s.id, MiB)) });
      expect(await received.get(s.id)).toEqual({ bytes: MiB, sha256: sha256(bodies[i]!) });
    }
    expect(p.accepted.map((s) => s.id)).toEqual(streams.map((s) => s.id));
    await until('both sides forgot the streams', () => p.client.streamCount === 0 && p.server.streamCount === 0);
    expect(p.ended).toEqual({ client: [], server: [] });
  }, 30_000);

  test('a paused stream holds at most one window (64 KiB) while its siblings run to completion', async () => {
    let slow: MuxStream | undefined;
    const done = new Map<number, Promise<{ bytes: number; sha256: string }>>();
    const p = await pair({
      onStream: (s) => {
        if (!slow) {
          slow = s;
          s.pause(); // its reader stops before the first byte
          return;
        }
        done.set(s.id, readBody(s));
      },
    });
    const slowBody = randomBytes(MiB);
    const slowClient = p.client.open();
    let slowWritten = false;
    void writeBody(slowClient, slowBody).then(() => {
      slowWritten = true;
    });
    const others = Array.from({ length: 8 }, () => ({ s: p.client.open(), body: randomBytes(MiB) }));
    await Promise.all(others.map((o) => writeBody(o.s, o.body)));
    await until('the 8 siblings read to their end', () => done.size === 8);
    for (const o of others) expect(await done.get(o.s.id)).toEqual({ bytes: MiB, sha256: sha256(o.body) });
    // The siblings finished while the paused one is still stuck: its writer waits for window.
    expect(slowWritten).toBe(false);
    expect(slowClient.writableLength).toBeGreaterThan(0);
    // What the paused stream buffered is what resume() hands over synchronously: exactly the one window it granted.
    const chunks: Buffer[] = [];
    slow!.on('data', (d: Buffer) => chunks.push(d));
    const rest = readBody(slow!);
    const buffered = chunks.reduce((n, c) => n + c.length, 0);
    expect(buffered).toBe(STREAM_WINDOW);
    await until('the paused stream written once resumed', () => slowWritten, 10_000);
    expect(await rest).toEqual({ bytes: MiB, sha256: sha256(slowBody) });
  }, 30_000);

  test('half-close, client first: the server reads the whole request and its end, then answers and ends', async () => {
    const p = await pair();
    const c = p.client.open();
    c.allowHalfOpen = true;
    const answer = readBody(c);
    c.write(Buffer.from('request body'));
    c.end();
    const s = await p.nextStream();
    s.allowHalfOpen = true;
    const req = await readBody(s);
    expect(req).toEqual({ bytes: 12, sha256: sha256(Buffer.from('request body')) });
    expect(s.readableEnded).toBe(true);
    expect(s.writableEnded).toBe(false);
    // After the client's FIN the server's side is still open: it writes, then ends.
    expect(s.write(Buffer.from('late answer'))).toBe(true);
    s.end();
    expect(await answer).toEqual({ bytes: 11, sha256: sha256(Buffer.from('late answer')) });
    await until('both streams done and forgotten', () => c.destroyed && s.destroyed && p.client.streamCount === 0 && p.server.streamCount === 0);
  });

  test('half-close, server first: the client still writes after the server ended its side', async () => {
    const p = await pair();
    const c = p.client.open();
    c.allowHalfOpen = true;
    c.write(Buffer.from('part one, '));
    const s = await p.nextStream();
    s.allowHalfOpen = true;
    const req = readBody(s);
    s.write(Buffer.from('early answer'));
    s.end();
    expect(await readBody(c)).toEqual({ bytes: 12, sha256: sha256(Buffer.from('early answer')) });
    expect(c.writableEnded).toBe(false);
    c.write(Buffer.from('part two'));
    c.end();
    expect(await req).toEqual({ bytes: 18, sha256: sha256(Buffer.from('part one, part two')) });
    await until('both streams forgotten', () => p.client.streamCount === 0 && p.server.streamCount === 0);
  });

  test('without allowHalfOpen a stream ends its own side when the peer ends (as a socket does)', async () => {
    const p = await pair();
    const c = p.client.open();
    c.write(Buffer.from('x'));
    const s = await p.nextStream();
    const serverSaw = readBody(s);
    s.end(); // the server ends first; the client's stream ends itself in answer
    await readBody(c);
    expect(await serverSaw).toEqual({ bytes: 1, sha256: sha256(Buffer.from('x')) });
    await until('both closed', () => c.destroyed && s.destroyed);
    expect(p.client.streamCount + p.server.streamCount).toBe(0);
  });

  test('a reset mid-body by the client reaches the server stream as an error and close; the session goes on', async () => {
    const p = await pair();
    const c = p.client.open();
    void writeBody(c, randomBytes(4 * MiB), 16 * 1024, false).catch(() => undefined);
    const s = await p.nextStream();
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 100_000) s.pause(); // the reader stalls: the body is mid-way when the reset comes
    });
    const serverEnd = failure(s);
    s.resume();
    await until('some of the body read', () => got >= 100_000);
    const clientEnd = failure(c);
    c.destroy();
    const r = await serverEnd;
    expect(r.hadError).toBe(true);
    expect(r.error).toBeInstanceOf(MuxStreamError);
    expect((r.error as MuxStreamError).code).toBe(MuxCode.Cancel);
    expect(got).toBeLessThan(4 * MiB);
    expect((await clientEnd).hadError).toBe(false); // a local destroy is no error on the side that did it
    expect(c.write(Buffer.from('after'))).toBe(false);
    // Another stream on the same session still works.
    const c2 = p.client.open();
    c2.end();
    const s2 = await p.nextStream();
    await readBody(s2);
    expect(p.ended).toEqual({ client: [], server: [] });
  });

  test('a reset mid-body by the server reaches the client stream as an error and close; writes after it are refused', async () => {
    const p = await pair();
    const c = p.client.open();
    const answer = failure(c);
    let clientGot = 0;
    c.on('data', (d: Buffer) => {
      clientGot += d.length;
      if (clientGot >= 100_000) c.pause();
    });
    c.write(Buffer.from('go'));
    const s = await p.nextStream();
    void writeBody(s, randomBytes(4 * MiB), 16 * 1024, false).catch(() => undefined);
    await until('some of the answer read', () => clientGot >= 100_000);
    s.destroy();
    const r = await answer;
    expect(clientGot).toBeLessThan(4 * MiB);
    expect(r.hadError).toBe(true);
    expect((r.error as MuxStreamError).code).toBe(MuxCode.Cancel);
    expect(c.destroyed).toBe(true);
    expect(c.write(Buffer.from('late'))).toBe(false);
    await until('both forgot it', () => p.client.streamCount === 0 && p.server.streamCount === 0);
    expect(p.ended).toEqual({ client: [], server: [] });
  });

  test('the server refuses streams beyond its announced limit with RST Refused; the dialer opens nothing more on that session, whose streams finish', async () => {
    const p = await pair({ maxStreams: 4 });
    const open = Array.from({ length: 4 }, () => p.client.open());
    expect(p.client.canOpen).toBe(false); // the dialer honours the announced limit
    for (const s of open) s.write(Buffer.from('hi'));
    await until('4 accepted', () => p.accepted.length === 4);
    // A dialer that opens one more anyway is refused, and the server's session goes on.
    const extra = p.client.open();
    const refused = failure(extra);
    extra.write(Buffer.from('one too many'));
    const r = await refused;
    expect((r.error as MuxStreamError).code).toBe(MuxCode.Refused);
    expect(p.accepted).toHaveLength(4);
    // The two sides disagree on what the session may carry: the dialer retires it (GOAWAY; its pool replays the
    // refused exchange on another session, audit 56b F3), and the streams it carries finish on it.
    expect(p.client.retiring).toBe(true);
    expect(p.client.canOpen).toBe(false);
    const bodies = p.accepted.map((s) => readBody(s));
    for (const s of open) {
      s.write(Buffer.from(' more'));
      s.end();
    }
    for (const b of await Promise.all(bodies)) expect(b.bytes).toBe('hi more'.length);
    await until('the retired session closed once its streams were done', () => p.client.ended);
    expect(p.ended.client).toEqual(['closed']);
  });

  /** A pair whose server collects the text of each stream it accepts. */
  async function textPair(): Promise<{ p: SessionPair; texts: () => string[] }> {
    const texts = new Map<number, string>();
    const p = await pair({
      onStream: (s) => {
        texts.set(s.id, '');
        s.on('data', (d: Buffer) => texts.set(s.id, texts.get(s.id) + d.toString()));
        s.on('error', () => undefined);
      },
    });
    return { p, texts: () => [...texts.values()].filter((t) => t !== '').sort() };
  }

  test('streams may send their first bytes in any order: a stream written after a younger sibling is still served', async () => {
    // The pool leases a stream (its id allocated at open()) to a request that may be gone before writing; the stream
    // goes idle and a later request writes it after younger streams already went out.
    const { p, texts } = await textPair();
    const older = p.client.open();
    const younger = p.client.open();
    younger.write(Buffer.from('younger'));
    await until('the younger stream served', () => texts().includes('younger'));
    older.write(Buffer.from('older'));
    await until('the older stream served, or the session ended', () => texts().includes('older') || p.ended.server.length > 0, 5_000);
    expect(p.ended.server).toEqual([]);
    expect(texts()).toEqual(['older', 'younger']);
  });

  test('a stream abandoned before its first byte (reset before anything was written) does not end the session', async () => {
    const { p, texts } = await textPair();
    const abandoned = p.client.open();
    abandoned.destroy(); // the request it was leased to left before writing
    const next = p.client.open();
    next.write(Buffer.from('after'));
    await until('the next stream served, or the session ended', () => texts().includes('after') || p.ended.server.length > 0, 5_000);
    expect(p.ended.server).toEqual([]);
    expect(texts()).toEqual(['after']);
  });

  test('a body larger than one DATA frame is split into frames of at most 64 KiB and arrives whole', async () => {
    const p = await pair({ transport: 'tcp' });
    const body = randomBytes(3 * MAX_DATA_PAYLOAD + 17);
    const c = p.client.open();
    // One write larger than the window: the stream keeps the rest until credit returns.
    expect(c.write(body)).toBe(false);
    c.end();
    const s = await p.nextStream();
    const sizes: number[] = [];
    s.on('data', (d: Buffer) => sizes.push(d.length));
    expect(await readBody(s)).toEqual({ bytes: body.length, sha256: sha256(body) });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_DATA_PAYLOAD);
  });
});

describe('session lifecycle', () => {
  test('GOAWAY drain: streams in flight finish, no new stream is offered, then both sides close', async () => {
    const p = await pair();
    const clients = Array.from({ length: 3 }, () => p.client.open());
    const answers = clients.map((c) => readBody(c));
    for (const c of clients) c.write(Buffer.from('request'));
    await until('3 accepted', () => p.accepted.length === 3);
    p.server.drain();
    await until('the client saw the GOAWAY', () => !p.client.canOpen && p.client.retiring);
    expect(p.server.ended).toBe(false);
    // The server answers the streams it had; each ends.
    for (const s of p.accepted) {
      s.resume();
      s.write(Buffer.from('answer'));
      s.end();
    }
    for (const c of clients) c.end();
    for (const a of answers) expect((await a).bytes).toBe(6);
    await until('both sessions closed', () => p.client.ended && p.server.ended);
    expect(p.ended).toEqual({ client: ['closed'], server: ['closed'] });
    expect(p.accepted).toHaveLength(3);
  });

  test('GOAWAY from the dialer (its SVID rotated): it opens nothing more and the session closes once its streams finish', async () => {
    const p = await pair();
    const c = p.client.open();
    c.write(Buffer.from('req'));
    const s = await p.nextStream();
    p.client.drain();
    expect(p.client.canOpen).toBe(false);
    await until('the server saw it', () => p.server.retiring);
    expect(p.ended).toEqual({ client: [], server: [] });
    const answer = readBody(c);
    s.resume();
    s.end();
    c.end();
    await answer;
    await until('both closed', () => p.client.ended && p.server.ended);
    expect(p.ended).toEqual({ client: ['closed'], server: ['closed'] });
  });

  test('keepalive: PINGs keep a quiet session up; a peer that stops reading ends it with reason keepalive', async () => {
    const p = await pair({ keepaliveIntervalMs: 100, keepaliveTimeoutMs: 300 });
    let tickServer = true;
    const ticker = setInterval(() => {
      p.client.tick(60_000);
      if (tickServer) p.server.tick(60_000);
    }, 20);
    try {
      const w0 = p.writes.client;
      const r0 = p.reads.client;
      // Several intervals with no stream: PINGs go out and their answers come back.
      await until('several PINGs answered', () => p.writes.client >= w0 + 4 && p.reads.client >= r0 + 4, 5_000);
      expect(p.ended).toEqual({ client: [], server: [] });
      // The server's process stops reading (its socket paused): the client's PING goes unanswered.
      tickServer = false;
      p.sockets.server.pause();
      await until('the client ended the session', () => p.ended.client.length > 0, 5_000);
      expect(p.ended.client).toEqual(['keepalive']);
      expect(p.client.ended).toBe(true);
    } finally {
      clearInterval(ticker);
    }
  });

  test('an open stream fails with the session when keepalive ends it', async () => {
    const p = await pair({ keepaliveIntervalMs: 50, keepaliveTimeoutMs: 150 });
    const c = p.client.open();
    c.write(Buffer.from('x'));
    await p.nextStream();
    const end = failure(c);
    p.sockets.server.pause();
    const ticker = setInterval(() => p.client.tick(60_000), 20);
    try {
      const r = await end;
      expect(r.hadError).toBe(true);
      expect((r.error as MuxStreamError).code).toBe(MuxCode.Keepalive);
      expect(p.ended.client).toEqual(['keepalive']);
    } finally {
      clearInterval(ticker);
    }
  });

  test('an idle session closes after the idle limit (GOAWAY first), not while a stream is open', async () => {
    const p = await pair({ transport: 'tcp' });
    const c = p.client.open();
    c.write(Buffer.from('x'));
    await p.nextStream();
    await new Promise((r) => setTimeout(r, 30));
    p.server.tick(10);
    expect(p.server.ended).toBe(false); // a stream is open
    c.destroy();
    await until('the server forgot the stream', () => p.server.streamCount === 0);
    await new Promise((r) => setTimeout(r, 30));
    p.server.tick(10);
    expect(p.server.ended).toBe(true);
    await until('the client saw the close', () => p.client.ended);
    expect(p.ended).toEqual({ client: ['closed'], server: ['closed'] });
  });
});

describe('coalesced writes', () => {
  test('the frames of N streams written in one event-loop turn leave in one socket write', async () => {
    const p = await pair();
    await new Promise((r) => setImmediate(r));
    const w0 = p.writes.client;
    const N = 16;
    const streams = Array.from({ length: N }, () => p.client.open());
    const answers = streams.map((s) => readBody(s));
    for (const s of streams) {
      s.write(Buffer.from(`GET /${s.id} HTTP/1.1\r\nhost: x\r\n\r\n`));
      s.end();
    }
    expect(p.writes.client).toBe(w0); // nothing written synchronously
    await new Promise((r) => setImmediate(r));
    expect(p.writes.client).toBe(w0 + 1);
    await until('all accepted', () => p.accepted.length === N);
    // The server answers all of them in one turn: one write the other way too.
    await new Promise((r) => setImmediate(r));
    const s0 = p.writes.server;
    for (const s of p.accepted) {
      s.write(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'));
      s.end();
    }
    await new Promise((r) => setImmediate(r));
    expect(p.writes.server).toBe(s0 + 1);
    for (const s of p.accepted) s.resume();
    expect((await Promise.all(answers)).map((a) => a.bytes)).toEqual(Array(N).fill(27));
  });
});
