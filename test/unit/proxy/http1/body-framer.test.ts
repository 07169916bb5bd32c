// Body framers: the chunked parser must find the same end (or the same error) however the bytes are split —
// one buffer, byte by byte, or random seeded splits — and must never count bytes past the end of the body.
import { describe, expect, test } from 'vitest';
import { type BodyFramer, ChunkedFramer, LengthFramer, type TrailerRule, UntilCloseFramer } from '../../../../proxy/src/http1/body-framer.js';
import { seededRandom as rng } from '../../../helpers/seeded-random.js';

interface Outcome {
  /** Bytes counted as body, over all pieces. */
  readonly consumed: number;
  readonly done: boolean;
  readonly error?: string;
}

/** Feeds `pieces` in order until the framer finishes or fails, as the session does. */
function run(framer: BodyFramer, pieces: readonly Buffer[]): Outcome {
  let consumed = 0;
  for (const p of pieces) {
    const r = framer.feed(p, 0);
    expect(r.consumed).toBeGreaterThanOrEqual(0);
    expect(r.consumed).toBeLessThanOrEqual(p.length);
    consumed += r.consumed;
    if (r.error) return { consumed, done: false, error: r.error };
    if (r.done) return { consumed, done: true };
    expect(r.consumed).toBe(p.length); // not done: everything offered was body
  }
  return { consumed, done: false };
}

function randomSplit(buf: Buffer, seed: number): Buffer[] {
  const next = rng(seed);
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + Math.floor(next() * Math.min(16, buf.length - i));
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

function byteByByte(buf: Buffer): Buffer[] {
  return Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1));
}

const B = (s: string) => Buffer.from(s, 'latin1');
const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

/** Every way of feeding `msg` must give the same outcome as one buffer. */
function sameEverySplit(msg: Buffer): Outcome {
  const whole = run(new ChunkedFramer(), [msg]);
  expect(run(new ChunkedFramer(), byteByByte(msg))).toEqual(whole);
  for (const seed of SEEDS) expect(run(new ChunkedFramer(), randomSplit(msg, seed))).toEqual(whole);
  return whole;
}

describe('chunked: valid bodies end exactly at the last CRLF, however split', () => {
  test.each([
    ['one chunk', '5\r\nhello\r\n0\r\n\r\n'],
    ['several chunks', '5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n'],
    ['empty body', '0\r\n\r\n'],
    ['upper- and lower-case hex', 'A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n'],
    ['leading zeros', '0005\r\nhello\r\n000\r\n\r\n'],
    ['13 hex digits is the longest size accepted (leading zeros)', '000000000000a\r\n0123456789\r\n0\r\n\r\n'],
    ['chunk extension', '5;name=value\r\nhello\r\n0;last\r\n\r\n'],
    ['quoted chunk extension', '5;name="a;b c"\r\nhello\r\n0\r\n\r\n'],
    ['several extensions, one without a value', '5;x=1;y\r\nhello\r\n0;z="q"\r\n\r\n'],
    ['one trailer', '5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n'],
    ['several trailers', '0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n'],
    ['CR LF inside chunk data is data', '4\r\n\r\n\r\n\r\n0\r\n\r\n'],
    ['a body that looks like a request', '1a\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n0\r\n\r\n'],
  ])('%s', (_name, text) => {
    const msg = B(text);
    expect(sameEverySplit(msg)).toEqual({ consumed: msg.length, done: true });
  });

  test('a larger random body with random chunk sizes, random extensions and trailers', () => {
    const next = rng(7);
    for (let round = 0; round < 20; round++) {
      const parts: string[] = [];
      for (let c = 0; c < 1 + Math.floor(next() * 10); c++) {
        const size = 1 + Math.floor(next() * 300);
        const ext = next() < 0.3 ? `;e${c}=v` : '';
        parts.push(`${size.toString(16)}${ext}\r\n${'d'.repeat(size)}\r\n`);
      }
      parts.push(next() < 0.5 ? '0\r\n\r\n' : '0\r\nT: 1\r\n\r\n');
      const msg = B(parts.join(''));
      expect(sameEverySplit(msg)).toEqual({ consumed: msg.length, done: true });
    }
  });
});

describe('chunked: bytes after the end are not body', () => {
  const body = '5\r\nhello\r\n0\r\n\r\n';
  test.each([
    ['a pipelined request', 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['another chunk', '5\r\nagain\r\n0\r\n\r\n'],
    ['one stray byte', 'x'],
  ])('%s', (_name, after) => {
    const msg = B(body + after);
    expect(sameEverySplit(msg)).toEqual({ consumed: body.length, done: true });
  });

  test('feeding from an offset counts from that offset', () => {
    const buf = B(`junk${body}tail`);
    const r = new ChunkedFramer().feed(buf, 4);
    expect(r).toEqual({ consumed: body.length, done: true, data: 5 });
  });

  test('a finished framer takes no more bytes', () => {
    const f = new ChunkedFramer();
    expect(f.feed(B(body), 0)).toEqual({ consumed: body.length, done: true, data: 5 });
    expect(f.feed(B('more'), 0)).toEqual({ consumed: 0, done: true, data: 0 });
  });
});

describe('chunked: the content counted is the chunks\' data, however split (bytesIn/bytesOut, as HTTP/2 DATA)', () => {
  test.each([
    ['5\r\nhello\r\n0\r\n\r\n', 5],
    ['5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: abc\r\n\r\n', 12],
    ['0\r\n\r\n', 0],
    ['4\r\n\r\n\r\n\r\n0\r\n\r\n', 4],
  ])('%j has %i bytes of content', (text, content) => {
    const msg = B(text);
    for (const pieces of [[msg], byteByByte(msg), ...SEEDS.map((s) => randomSplit(msg, s))]) {
      for (const trailers of ['keep', 'drop'] as const) {
        const f = new ChunkedFramer(trailers);
        expect(pieces.reduce((sum, p) => sum + (f.feed(p, 0).data ?? Number.NaN), 0)).toBe(content);
      }
    }
    // A length-framed or until-close body is all content: no count apart.
    expect(new LengthFramer(5).feed(B('hello'), 0).data).toBeUndefined();
    expect(new UntilCloseFramer().feed(B('hello'), 0).data).toBeUndefined();
  });
});

describe('chunked: malformed framing is an error, at the same byte however split', () => {
  test.each([
    ['no size digits', '\r\nhello\r\n0\r\n\r\n', 0],
    ['non-hex size', 'g\r\n', 0],
    ['negative size', '-5\r\nhello\r\n', 0],
    ['0x prefix', '0x5\r\nhello\r\n', 1],
    ['bare LF after the size', '5\nhello\r\n0\r\n\r\n', 1],
    ['CR not followed by LF after the size', '5\rxhello', 2],
    ['data longer than the size', '5\r\nhelloX\r\n0\r\n\r\n', 8],
    ['data shorter than the size', '5\r\nhell\r\n0\r\n\r\n', 8],
    ['bare LF after data', '5\r\nhello\n0\r\n\r\n', 8],
    ['bare LF inside an extension', '5;a=b\nhello', 5],
    ['size beyond 13 hex digits (leading zeros count)', `${'0'.repeat(13)}5\r\nhello\r\n`, 13],
    ['size that would overflow', 'ffffffffffffffffff\r\n', 13],
    ['CR not followed by LF after the last chunk', '0\r\n\rX', 4],
    ['bare LF inside a trailer', '0\r\nA: 1\nB: 2\r\n\r\n', 7],
    ['bare LF ending the trailer section', '0\r\nA: 1\r\n\n', 9],
    // Where llhttp (Node's parser, most apps' parser) would refuse or read the line otherwise:
    ['whitespace before an extension', '5 ;x=1\r\nhello\r\n', 1],
    ['an empty extension', '5;\r\nhello\r\n', 2],
    ['whitespace around "=" in an extension', '5;a = b\r\nhello\r\n', 7],
    ['quoted-pair in an extension', '5;a="b\\"c"\r\nhello\r\n', 10],
    ['a trailer line without a colon', '0\r\nbad\r\n\r\n', 6],
    ['an obs-fold trailer line', '0\r\nA: 1\r\n folded\r\n\r\n', 16],
    ['Content-Length as a trailer', '0\r\nContent-Length: 5\r\n\r\n', 20],
    ['Transfer-Encoding as a trailer', '0\r\ntransfer-encoding: chunked\r\n\r\n', 29],
  ])('%s', (_name, text, at) => {
    const out = sameEverySplit(B(text));
    expect(out.error).toBe('bad_chunk');
    expect(out.consumed).toBe(at);
  });

  test('a bare LF right after the last chunk is refused (a lenient server would end the body there)', () => {
    // Request smuggling shape: the proxy must not read what follows as trailer lines while a recipient that
    // accepts bare LF sees the body end and a second request start.
    const out = sameEverySplit(B('0\r\n\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(out.error).toBe('bad_chunk');
  });

  test('an oversized size line (extension longer than 4096 bytes) is refused before it ends', () => {
    const out = run(new ChunkedFramer(), [B(`5;${'e'.repeat(5000)}`)]);
    expect(out.error).toBe('bad_chunk');
    expect(out.consumed).toBeLessThanOrEqual(4098);
  });

  test('an extension of 4000 bytes is still fine', () => {
    const msg = B(`5;${'e'.repeat(4000)}\r\nhello\r\n0\r\n\r\n`);
    expect(sameEverySplit(msg)).toEqual({ consumed: msg.length, done: true });
  });

  test('a trailer line may be as long as a head line (bounded by the section, not by 4096 bytes: audit 58f F2)', () => {
    expect(run(new ChunkedFramer(), [B(`0\r\nX: ${'t'.repeat(5000)}\r\n\r\n`)])).toMatchObject({ done: true });
    expect(run(new ChunkedFramer(), [B(`0\r\nX: ${'t'.repeat(17_000)}\r\n\r\n`)]).error).toBe('trailers_too_large');
  });

  test('every byte of the section counts, LFs too: 5,400 lines of "a:" (21.6 KB) are over the 16 KiB default', () => {
    // Counted without the LFs they were 16.2 KB and passed (audit 58f F2).
    const out = run(new ChunkedFramer('keep', { maxHeaderBytes: 16_384, maxHeaders: 100_000 }), [B(`0\r\n${'a:\r\n'.repeat(5400)}\r\n`)]);
    expect(out.error).toBe('trailers_too_large');
    expect(out.consumed).toBeLessThanOrEqual(16_384 + 4);
  });

  test('trailer fields are as many as a head may have (limits.maxHeaders), no more', () => {
    const fields = (n: number) => B(`0\r\n${Array.from({ length: n }, (_, i) => `T${i}: v\r\n`).join('')}\r\n`);
    expect(run(new ChunkedFramer(), [fields(100)])).toMatchObject({ done: true });
    expect(run(new ChunkedFramer(), [fields(101)]).error).toBe('trailers_too_large');
    expect(run(new ChunkedFramer('drop', { maxHeaderBytes: 16_384, maxHeaders: 8 }), [fields(9)]).error).toBe('trailers_too_large');
  });

  test('a trailer section larger than 16 KiB in total (the heads\' default bound) is refused as too large, even in short lines', () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `T${i}: ${'v'.repeat(20)}\r\n`).join('');
    const out = run(new ChunkedFramer('keep', { maxHeaderBytes: 16_384, maxHeaders: 2000 }), [B(`0\r\n${lines}\r\n`)]);
    expect(out.error).toBe('trailers_too_large');
    // The limit counts line contents and CRs; within a few percent of 16 KiB either way.
    expect(out.consumed).toBeLessThan(18_000);
  });

  test('the trailer section\'s bound is the one given (limits.maxHeaderBytes), in both directions', () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `T${i}: ${'v'.repeat(20)}\r\n`).join('');
    // ~28 KB of trailers: over the default, under a 64 KiB bound.
    const big = B(`0\r\n${lines(1000)}\r\n`);
    expect(run(new ChunkedFramer('keep', { maxHeaderBytes: 65_536, maxHeaders: 2000 }), [big])).toMatchObject({ done: true });
    expect(run(new ChunkedFramer('drop', { maxHeaderBytes: 65_536, maxHeaders: 2000 }), [big])).toMatchObject({ done: true });
    // ~2.8 KB: under the default, over a 2 KiB bound.
    const small = B(`0\r\n${lines(100)}\r\n`);
    expect(run(new ChunkedFramer('keep', { maxHeaderBytes: 16_384, maxHeaders: 2000 }), [small])).toMatchObject({ done: true });
    expect(run(new ChunkedFramer('keep', { maxHeaderBytes: 2048, maxHeaders: 2000 }), [small]).error).toBe('trailers_too_large');
  });

  test('an endless size line of digits is cut off at 13', () => {
    const out = sameEverySplit(B('1'.repeat(100)));
    expect(out).toEqual({ consumed: 13, done: false, error: 'bad_chunk' });
  });
});

describe('length and until-close framers', () => {
  test('LengthFramer ends after exactly N bytes however split, leaving the rest', () => {
    const msg = B('0123456789NEXT');
    for (const pieces of [[msg], byteByByte(msg), ...SEEDS.map((s) => randomSplit(msg, s))]) {
      expect(run(new LengthFramer(10), pieces)).toEqual({ consumed: 10, done: true });
    }
  });

  test('LengthFramer from an offset, and an incomplete body', () => {
    expect(new LengthFramer(3).feed(B('xxabcd'), 2)).toEqual({ consumed: 3, done: true });
    expect(run(new LengthFramer(100), [B('abc'), B('def')])).toEqual({ consumed: 6, done: false });
  });

  test('UntilCloseFramer takes everything and never finishes by itself', () => {
    const f = new UntilCloseFramer();
    expect(f.feed(B('abc'), 1)).toEqual({ consumed: 2, done: false });
    expect(f.feed(Buffer.alloc(0), 0)).toEqual({ consumed: 0, done: false });
  });
});

describe('request trailers dropped', () => {
  /** What a forwarder that honours `kept` sends on, over all pieces, as the session does. */
  function forwarded(pieces: readonly Buffer[], rule: TrailerRule = 'drop'): { out: string; done: boolean; error?: string } {
    const f = new ChunkedFramer(rule);
    let out = '';
    for (const p of pieces) {
      const r = f.feed(p, 0);
      if (r.error) return { out, done: false, error: r.error };
      out += p.subarray(0, r.kept ?? r.consumed).toString('latin1');
      if (r.done) return { out: r.tail === undefined ? out : `${out}${r.tail.toString('latin1')}`, done: true };
    }
    return { out, done: false };
  }

  test.each([
    ['one forged identity trailer', '5\r\nhello\r\n0\r\nX-Forwarded-Client-Cert: By=x;URI=spiffe://example.org/admin\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n'],
    ['several trailers', '3\r\nabc\r\n0\r\nA: 1\r\nTraceparent: 00-x\r\nB: 2\r\n\r\n', '3\r\nabc\r\n0\r\n\r\n'],
    ['last-chunk with an extension', '0;ext=1\r\nX: y\r\n\r\n', '0;ext=1\r\n\r\n'],
    ['no trailers: forwarded untouched', '3\r\nabc\r\n0\r\n\r\n', '3\r\nabc\r\n0\r\n\r\n'],
  ])('%s', (_name, text, expected) => {
    const msg = B(text);
    for (const pieces of [[msg], byteByByte(msg), ...SEEDS.map((s) => randomSplit(msg, s))]) {
      expect(forwarded(pieces)).toEqual({ out: expected, done: true });
    }
  });

  test('bytes after the body are neither consumed nor kept', () => {
    const r = new ChunkedFramer('drop').feed(B('0\r\nX: 1\r\n\r\nGET / HTTP/1.1\r\n'), 0);
    expect(r).toEqual({ consumed: 11, done: true, kept: 3, tail: B('\r\n'), data: 0 });
  });

  test.each([
    ['the named fields go, in any case, the others stay in order', '3\r\nabc\r\n0\r\nA: 1\r\nX-Tessera-Error: authz_denied\r\nB: 2\r\nx-forwarded-client-cert: By=x\r\n\r\n', '3\r\nabc\r\n0\r\nA: 1\r\nB: 2\r\n\r\n'],
    ['only named fields: an empty section', '0\r\nX-Tessera-Error: x\r\n\r\n', '0\r\n\r\n'],
    ['none named: the section as sent', '0\r\nServer-Timing: db;dur=3\r\n\r\n', '0\r\nServer-Timing: db;dur=3\r\n\r\n'],
  ])('named fields dropped (response trailers at an app-facing listener): %s', (_name, text, expected) => {
    const msg = B(text);
    const rule = new Set(['x-tessera-error', 'x-forwarded-client-cert']);
    for (const pieces of [[msg], byteByByte(msg), ...SEEDS.map((s) => randomSplit(msg, s))]) expect(forwarded(pieces, rule)).toEqual({ out: expected, done: true });
  });

  test('malformed trailers are still refused in drop mode', () => {
    expect(forwarded([B('0\r\nX: 1\n\r\n')]).error).toBe('bad_chunk');
  });

  test('response framers (the default) keep trailers', () => {
    const r = new ChunkedFramer().feed(B('0\r\nX: 1\r\n\r\n'), 0);
    expect(r).toEqual({ consumed: 11, done: true, data: 0 });
  });
});
