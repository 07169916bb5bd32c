// Finds where a message body ends in a byte stream without copying or rewriting it: the bytes pass through
// untouched, the framer only counts them. Chunked framing is parsed strictly (sizes, CRLFs, trailers). The one
// rewrite: the trailer section, whose fields can be dropped — all of them (request trailers: a trailer field would
// reach the app past the header checks, a forged x-forwarded-client-cert, say) or some (an app's response trailers
// naming what only the proxy says).
import { type BodyFraming, fieldLineColon } from './http1-head.js';

/** What becomes of chunked trailer fields: forwarded, all dropped, or the named ones (lower-case) dropped. */
export type TrailerRule = 'keep' | 'drop' | ReadonlySet<string>;

/** A trailer section's bound: the heads' own (limits.maxHeaderBytes and maxHeaders, or their response pair). */
export interface TrailerBound {
  /** Every byte of the section, CRLFs included. */
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
}

/** The limits' defaults. */
const DEFAULT_TRAILER_BOUND: TrailerBound = { maxHeaderBytes: 16_384, maxHeaders: 100 };

/**
 * `trailers`: see TrailerRule and FeedResult.kept. `bound`: the trailer section's, the heads' own: trailers are header
 * fields that come late, and as many bytes or fields of them cost the same.
 */
export function framerFor(f: BodyFraming, trailers: TrailerRule = 'keep', bound: TrailerBound = DEFAULT_TRAILER_BOUND): BodyFramer | null {
  switch (f.kind) {
    case 'length':
      return new LengthFramer(f.length);
    case 'chunked':
      return new ChunkedFramer(trailers, bound);
    case 'close':
      return new UntilCloseFramer();
    default:
      return null;
  }
}

export interface FeedResult {
  /** Bytes of `buf` from `start` that belong to this body. */
  readonly consumed: number;
  readonly done: boolean;
  /**
   * Set when the framing is malformed, or the trailer section is larger than the heads may be (refused as an
   * oversized head is: 431 for a request); the connection must be closed.
   */
  readonly error?: 'bad_chunk' | 'trailers_too_large';
  /**
   * Set only when trailer fields are being dropped: just the first `kept` consumed bytes are forwarded, and when
   * `done` the forwarder ends the message with `tail` (the trailer fields kept, then CRLF) itself.
   */
  readonly kept?: number;
  /** With `kept` and `done`: the trailer section to send in place of the one read. */
  readonly tail?: Buffer;
  /**
   * Content bytes among the consumed ones: for a chunked body, without the chunk sizes, CRLFs and trailers (what
   * HTTP/2 carries as DATA, and what bytesIn/bytesOut count); absent, all consumed bytes are content.
   */
  readonly data?: number;
}

const CRLF = Buffer.from('\r\n', 'latin1');

export interface BodyFramer {
  feed(buf: Buffer, start: number): FeedResult;
}

export class LengthFramer implements BodyFramer {
  #left: number;
  constructor(length: number) {
    this.#left = length;
  }
  /** Body bytes still to come. */
  get remaining(): number {
    return this.#left;
  }
  feed(buf: Buffer, start: number): FeedResult {
    const n = Math.min(this.#left, buf.length - start);
    this.#left -= n;
    return { consumed: n, done: this.#left === 0 };
  }
}

/** Body runs until the peer closes (HTTP/1.0-style responses). */
export class UntilCloseFramer implements BodyFramer {
  feed(buf: Buffer, start: number): FeedResult {
    return { consumed: buf.length - start, done: false };
  }
}

enum S {
  Size = 0,
  Ext = 1,
  SizeLf = 2,
  Data = 3,
  DataCr = 4,
  DataLf = 5,
  TrailerStart = 6,
  TrailerLine = 7,
  TrailerLf = 8,
  EndLf = 9,
  Done = 10,
}

// RFC 9112 section 7.1.1 without whitespace and without quoted-pair (llhttp accepts neither):
// *( ";" token [ "=" ( token / quoted-string ) ] ).
const CHUNK_EXT = /^(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"[\t \x21\x23-\x5b\x5d-\x7e]*"))?)*$/;

const FRAMING_FIELD = /^(?:content-length|transfer-encoding)$/i;

// 13 hex digits stay below 2^53, where JavaScript numbers are exact.
const MAX_SIZE_DIGITS = 13;
const MAX_LINE = 4096;

export class ChunkedFramer implements BodyFramer {
  readonly #trailers: TrailerRule;
  /** A trailer field was seen and the rule is not 'keep': the section is withheld and sent as `tail` at the end. */
  #dropping = false;
  /** Trailer lines kept under a named-fields rule, each with its CRLF. */
  #keptLines = '';
  #s: S = S.Size;
  #size = 0;
  #digits = 0;
  #left = 0;
  /** The chunk extensions (bounded by MAX_LINE) or trailer line (by the section's bound) being read. */
  #line = '';
  #trailerBytes = 0;

  readonly #bound: TrailerBound;
  #trailerFields = 0;

  constructor(trailers: TrailerRule = 'keep', bound: TrailerBound = DEFAULT_TRAILER_BOUND) {
    this.#trailers = trailers;
    this.#bound = bound;
  }

  feed(buf: Buffer, start: number): FeedResult {
    let keepEnd = this.#dropping ? start : -1;
    let data = 0;
    let i = start;
    const n = buf.length;
    while (i < n) {
      const c = buf[i]!;
      switch (this.#s) {
        case S.Size: {
          const d = hex(c);
          if (d >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) return bad(i - start);
            this.#size = this.#size * 16 + d;
          } else if (this.#digits === 0) return bad(i - start);
          else if (c === 13) this.#s = S.SizeLf;
          else if (c === 59) {
            // No whitespace around the size or in extensions: llhttp, like most app servers, refuses it.
            this.#s = S.Ext;
            this.#line = ';';
          } else return bad(i - start);
          i++;
          break;
        }
        case S.Ext:
          // Extensions are ignored but must parse: a parser downstream that reads them differently (a quoted CRLF,
          // a bare ";") would find another end of the chunk line.
          if (c === 13) {
            if (!CHUNK_EXT.test(this.#line)) return bad(i - start);
            this.#s = S.SizeLf;
          } else if (c === 10 || this.#line.length >= MAX_LINE) return bad(i - start);
          else this.#line += String.fromCharCode(c);
          i++;
          break;
        case S.SizeLf:
          if (c !== 10) return bad(i - start);
          i++;
          if (this.#size === 0) {
            this.#s = S.TrailerStart;
          } else {
            this.#left = this.#size;
            this.#s = S.Data;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        case S.Data: {
          const take = Math.min(this.#left, n - i);
          this.#left -= take;
          data += take;
          i += take;
          if (this.#left === 0) this.#s = S.DataCr;
          break;
        }
        case S.DataCr:
          if (c !== 13) return bad(i - start);
          this.#s = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== 10) return bad(i - start);
          this.#s = S.Size;
          i++;
          break;
        case S.TrailerStart:
          // A bare LF here would end the body for lenient parsers downstream: refuse it.
          if (c === 10) return bad(i - start);
          if (c === 13) this.#s = S.EndLf;
          else {
            this.#s = S.TrailerLine;
            this.#line = String.fromCharCode(c);
            if (this.#trailers !== 'keep' && !this.#dropping) {
              this.#dropping = true;
              keepEnd = i;
            }
          }
          if (++this.#trailerBytes > this.#bound.maxHeaderBytes) return tooLarge(i - start);
          i++;
          break;
        case S.TrailerLine:
          // A trailer is a field line and never a framing field (RFC 9110 section 6.5.1): llhttp refuses anything
          // else, so forwarding it would split the readings.
          if (c === 13) {
            const colon = fieldLineColon(this.#line);
            if (colon < 0 || FRAMING_FIELD.test(this.#line.slice(0, colon))) return bad(i - start);
            if (++this.#trailerFields > this.#bound.maxHeaders) return tooLarge(i - start);
            const rule = this.#trailers;
            if (typeof rule !== 'string' && !rule.has(this.#line.slice(0, colon).toLowerCase())) this.#keptLines += `${this.#line}\r\n`;
            this.#s = S.TrailerLf;
          } else if (c === 10) return bad(i - start);
          // A line as long as a head's may be: the section's byte bound below holds it (audit 58f F2).
          else this.#line += String.fromCharCode(c);
          if (++this.#trailerBytes > this.#bound.maxHeaderBytes) return tooLarge(i - start);
          i++;
          break;
        case S.TrailerLf:
          if (c !== 10) return bad(i - start);
          // Every byte of the section counts, LFs too, as in a head (audit 58f F2: ~32 % over the bound passed).
          if (++this.#trailerBytes > this.#bound.maxHeaderBytes) return tooLarge(i - start);
          this.#s = S.TrailerStart;
          i++;
          break;
        case S.EndLf:
          if (c !== 10) return bad(i - start);
          this.#s = S.Done;
          if (keepEnd >= 0) return { consumed: i + 1 - start, done: true, kept: keepEnd - start, tail: this.#keptLines === '' ? CRLF : Buffer.from(`${this.#keptLines}\r\n`, 'latin1'), data };
          return result(i + 1 - start, true, keepEnd, start, data);
        default:
          return result(i - start, true, keepEnd, start, data);
      }
    }
    return result(i - start, false, keepEnd, start, data);
  }
}

function result(consumed: number, done: boolean, keepEnd: number, start: number, data: number): FeedResult {
  return keepEnd < 0 ? { consumed, done, data } : { consumed, done, kept: keepEnd - start, data };
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function bad(consumed: number): FeedResult {
  return { consumed, done: false, error: 'bad_chunk' };
}

function tooLarge(consumed: number): FeedResult {
  return { consumed, done: false, error: 'trailers_too_large' };
}
