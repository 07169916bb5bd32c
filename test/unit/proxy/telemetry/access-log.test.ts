// Access log: the JSON lines written to a real file, path sanitising, field whitelisting, 'off', errors, ids.
import { closeSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { type AccessEntry, BATCH_BYTES, MAX_PATH_CHARS, createAccessLog, createRequestIds, formatAccessLine, newRequestId, sanitizePath } from '../../../../proxy/src/telemetry/access-log.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { fifoWithReader, readAll, readNow } from '../../../helpers/fifo-read.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-access-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const clock = { nowMs: () => 1_767_225_600_123 };
const lines = async (file: string) =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const base: AccessEntry = { requestId: 'r-1', direction: 'inbound', protocol: 'http1', durationMs: 1.23456 };

describe('access log', () => {
  test('writes one JSON line per entry with the documented fields', async () => {
    const file = join(dir, 'access.log');
    const log = createAccessLog({ destination: file, clock });
    expect(log.enabled).toBe(true);
    log.write({
      ...base,
      peer: 'spiffe://example.org/ns/default/sa/web',
      method: 'GET',
      path: '/v1/items?token=secret#frag',
      status: 200,
      decision: 'allow',
      policy: 'api-allow-web',
      bytesIn: 12,
      bytesOut: 345,
      upstream: '127.0.0.1:8080',
      resumed: true,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    log.write({ ...base, requestId: 'r-2', protocol: 'tcp', time: 5, peer: null, error: 'upstream refused' });
    log.write({ ...base, requestId: 'r-3', time: 6, status: 200, error: 'stream_idle_timeout', responseFlags: 'stream_idle_timeout' });
    await log.flush();
    const [a, b, c] = await lines(file);
    expect(a).toEqual({
      log: 'access',
      time: 1_767_225_600_123,
      requestId: 'r-1',
      direction: 'inbound',
      protocol: 'http1',
      peer: 'spiffe://example.org/ns/default/sa/web',
      method: 'GET',
      path: '/v1/items',
      status: 200,
      decision: 'allow',
      policy: 'api-allow-web',
      bytesIn: 12,
      bytesOut: 345,
      durationMs: 1.235,
      upstream: '127.0.0.1:8080',
      resumed: true,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(b).toEqual({ log: 'access', time: 5, requestId: 'r-2', direction: 'inbound', protocol: 'tcp', peer: null, durationMs: 1.235, error: 'upstream refused' });
    expect(c).toEqual({ log: 'access', time: 6, requestId: 'r-3', direction: 'inbound', protocol: 'http1', status: 200, durationMs: 1.235, error: 'stream_idle_timeout', responseFlags: 'stream_idle_timeout' });
    await log.close();
  });

  test('never writes fields outside AccessEntry (headers, bodies) and caps long values', async () => {
    const file = join(dir, 'access.log');
    const log = createAccessLog({ destination: file, clock });
    const sneaky = { ...base, headers: { authorization: 'Bearer abc' }, cookie: 'sid=1', path: `/${'a'.repeat(1000)}?q=1`, error: 'e'.repeat(5000) };
    log.write(sneaky as AccessEntry);
    await log.close();
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('Bearer');
    expect(text).not.toContain('sid=1');
    const [entry] = await lines(file);
    expect((entry!.path as string).length).toBe(MAX_PATH_CHARS);
    expect((entry!.error as string).length).toBe(256);
  });

  test('time is whole epoch milliseconds and durationMs keeps three decimals (the listeners time exchanges finely)', () => {
    const e: AccessEntry = { requestId: 'r', direction: 'inbound', protocol: 'http', durationMs: 0.31249 };
    const line = JSON.parse(formatAccessLine(e, 1_767_225_600_123.789)) as { time: number; durationMs: number };
    expect(line.time).toBe(1_767_225_600_123);
    expect(line.durationMs).toBe(0.312);
  });

  test('sanitizePath strips query and fragment and caps the length', () => {
    expect(sanitizePath('/a/b')).toBe('/a/b');
    expect(sanitizePath('/a?x=1?y')).toBe('/a');
    expect(sanitizePath('/a#f?x')).toBe('/a');
    expect(sanitizePath('?only')).toBe('');
    expect(sanitizePath('x'.repeat(300))).toHaveLength(MAX_PATH_CHARS);
  });

  test('appends to an existing file; writes after close are dropped and counted', async () => {
    const file = join(dir, 'access.log');
    const first = createAccessLog({ destination: file, clock });
    first.write(base);
    await first.close();
    const second = createAccessLog({ destination: file, clock });
    second.write({ ...base, requestId: 'r-2' });
    await second.close();
    second.write({ ...base, requestId: 'r-3' });
    expect(second.dropped()).toBe(1);
    expect((await lines(file)).map((l) => l.requestId)).toEqual(['r-1', 'r-2']);
    await second.close();
  });

  test("'off' writes nothing anywhere", async () => {
    const log = createAccessLog({ destination: 'off', clock });
    expect(log.enabled).toBe(false); // listeners skip building entries for it
    log.write(base);
    await log.flush();
    await log.close();
    expect(log.dropped()).toBe(0);
  });

  test('an unwritable path fails at creation with a stable code', async () => {
    let err: unknown;
    try {
      createAccessLog({ destination: join(dir, 'missing-dir', 'access.log'), clock });
    } catch (e) {
      err = e;
    }
    expect(isTesseraError(err, 'TESSERA_ERR_ACCESS_LOG_UNWRITABLE')).toBe(true);
    await expect(stat(join(dir, 'missing-dir'))).rejects.toThrow();
  });

  test('a batched line reaches the file within the flush interval without flush()', async () => {
    const file = join(dir, 'access.log');
    // 500 ms: long enough that the file is surely still empty just after the write on a loaded CI machine (with 50 ms
    // the interval once passed before the first read).
    const log = createAccessLog({ destination: file, clock, flushIntervalMs: 500 });
    log.write(base);
    expect(await readFile(file, 'utf8')).toBe('');
    const deadline = Date.now() + 3_000;
    while ((await readFile(file, 'utf8')) === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((await lines(file)).map((l) => l.requestId)).toEqual(['r-1']);
    await log.close();
  });

  test('a flush timer runs only while lines wait (a proxy without traffic is not woken every interval)', async () => {
    const file = join(dir, 'access.log');
    const time = new FakeTime();
    const log = createAccessLog({ destination: file, clock, flushIntervalMs: 50, timers: time });
    expect(time.pending).toBe(0);
    log.write(base);
    log.write({ ...base, requestId: 'r-2' });
    expect(time.pending).toBe(1);
    time.advance(49);
    expect(await readFile(file, 'utf8')).toBe('');
    time.advance(1);
    expect(time.pending).toBe(0);
    await log.flush(); // the timer handed the batch off: this waits for it to reach the file
    expect((await lines(file)).map((l) => l.requestId)).toEqual(['r-1', 'r-2']);
    await log.close();
  });

  test('a full batch is written without waiting for the interval; a line longer than a batch and multi-byte text arrive whole', async () => {
    const file = join(dir, 'access.log');
    const time = new FakeTime(); // never advanced: only full batches, and flush(), reach the file
    const log = createAccessLog({ destination: file, clock, batchBytes: 1024, timers: time });
    // Multi-byte text of varying lengths: a line's UTF-8 length, not its length in characters, decides whether it
    // fits in what is left of a batch.
    const paths = Array.from({ length: 40 }, (_, i) => `/caf\u00e9/${(i % 2 ? '\u65e5' : '\u{1F600}').repeat((i * 13) % 60)}`);
    for (let i = 0; i < 40; i++) log.write({ ...base, requestId: String(i), path: paths[i]! });
    log.write({ ...base, requestId: 'long', error: 'e'.repeat(256), path: `/${'p'.repeat(255)}`, policy: 'q'.repeat(1500) });
    log.write({ ...base, requestId: 'tail' });
    const deadline = Date.now() + 3_000;
    let got: Record<string, unknown>[] = [];
    while (got.length < 41 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      got = await lines(file);
    }
    // Everything up to the long line has been written; 'tail' waits in a batch that is not full.
    expect(got.map((l) => l.requestId)).toEqual([...Array.from({ length: 40 }, (_, i) => String(i)), 'long']);
    expect(got.slice(0, 40).map((l) => l.path)).toEqual(paths);
    expect(got[40]!.policy).toBe('q'.repeat(1500));
    await log.flush();
    expect((await lines(file)).map((l) => l.requestId).slice(-1)).toEqual(['tail']);
    await log.close();
  });

  test('many writes all arrive, in order', async () => {
    const file = join(dir, 'access.log');
    const log = createAccessLog({ destination: file, clock });
    for (let i = 0; i < 5000; i++) log.write({ ...base, requestId: String(i) });
    await log.flush();
    const got = await lines(file);
    expect(got).toHaveLength(5000);
    expect(got.every((l, i) => l.requestId === String(i))).toBe(true);
    await log.close();
  });
});

describe('access logs of several processes on one pipe', () => {
  // Workers share the proxy's stdout. A pipe takes a write of up to PIPE_BUF bytes in one piece; a larger one can
  // be split around another writer's data when the pipe fills, cutting a line in two.
  test('with sharedDestination, two logs writing at once to a slowly read FIFO leave only whole lines', async () => {
    const { path: fifo, reader } = fifoWithReader(dir, 'shared.fifo');
    try {
      const logs = [0, 1].map(() => createAccessLog({ destination: fifo, clock, sharedDestination: true }));
      const perLog = 3000;
      for (let i = 0; i < perLog; i++) for (const [n, log] of logs.entries()) log.write({ ...base, requestId: `${n}-${i}`, path: `/${'x'.repeat(i % 200)}` });
      for (const log of logs) log.flush();
      const chunks: Buffer[] = [];
      const scratch = Buffer.alloc(8192);
      let total = 0;
      for (let i = 0; i < 3000 && total < 2 * perLog; i++) {
        await new Promise((r) => setTimeout(r, 2));
        const n = readNow(reader, scratch);
        chunks.push(Buffer.from(scratch.subarray(0, n)));
        total = Buffer.concat(chunks).toString('latin1').split('\n').length - 1;
      }
      const got = Buffer.concat(chunks).toString('utf8').split('\n').slice(0, -1);
      expect(got).toHaveLength(2 * perLog);
      const ids = got.map((l) => (JSON.parse(l) as { requestId: string }).requestId);
      for (const n of [0, 1]) expect(ids.filter((id) => id.startsWith(`${n}-`))).toEqual(Array.from({ length: perLog }, (_, i) => `${n}-${i}`));
      await Promise.all(logs.map((l) => l.close()));
    } finally {
      closeSync(reader);
    }
  });
});

describe('access log whose destination takes nothing', () => {
  // A FIFO with a reader that never reads: the kernel takes one pipe's worth (64 KiB), then the destination's
  // writes find it full (EAGAIN: a FIFO is opened non-blocking), as on a stdout pipe whose reader stalled. close()
  // must still end (the proxy's shutdown awaits it), counting what did not arrive as dropped.
  test('close() resolves after closeTimeoutMs; lines not written whole are counted as dropped, the rest arrived', async () => {
    const { path: fifo, reader } = fifoWithReader(dir, 'stalled.fifo');
    try {
      const log = createAccessLog({ destination: fifo, clock, closeTimeoutMs: 200 });
      const total = 3000; // ~100 bytes a line: several pipes' worth
      for (let i = 0; i < total; i++) log.write({ ...base, requestId: String(i).padStart(6, '0') });
      await log.close();
      const dropped = log.dropped();
      expect(dropped).toBeGreaterThan(0);
      // What the pipe holds: whole lines, in order. With the dropped ones every line is accounted for, some twice:
      // the pipe may have taken part of the last batch (at most BATCH_BYTES) before it filled, so its lines count as
      // dropped though some arrived.
      const got = readAll(reader).toString('latin1').split('\n');
      const whole = got.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(whole.map((l) => Number(l['requestId']))).toEqual(whole.map((_, i) => i));
      expect(whole.length + dropped).toBeGreaterThanOrEqual(total);
      const lineBytes = got[0]!.length + 1;
      expect(whole.length + dropped).toBeLessThanOrEqual(total + Math.ceil(BATCH_BYTES / lineBytes) + 1);
    } finally {
      closeSync(reader);
    }
  });
});

describe('request ids', () => {
  test('createRequestIds: unique, prefix per generator', () => {
    const a = createRequestIds();
    const b = createRequestIds();
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(a());
    expect(ids.size).toBe(10_000);
    expect(a()).toMatch(/^[A-Za-z0-9_-]{8}-[0-9a-z]+$/);
    const pa = a().slice(0, 8);
    const pb = b().slice(0, 8);
    expect(pa).not.toBe(pb);
  });
  test('newRequestId is a UUID', () => {
    expect(newRequestId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newRequestId()).not.toBe(newRequestId());
  });
});
