// Finds where a message body ends in a byte stream without copying or rewriting it: the bytes pass through
// untouched, the framer only counts them. Chunked framing is parsed strictly (sizes, CRLFs, trailers).
import type { BodyFraming } from './http1-head.js';

export function framerFor(f: BodyFraming): BodyFramer | null {
  switch (f.kind) {
    case 'length':
      return new LengthFramer(f.length);
    case 'chunked':
      return new ChunkedFramer();
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
  /** Set when the framing is malformed; the connection must be closed. */
  readonly error?: 'bad_chunk';
}

export interface BodyFramer {
  feed(buf: Buffer, start: number): FeedResult;
}

export class LengthFramer implements BodyFramer {
  #left: number;
  constructor(length: number) {
    this.#left = length;
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

// 13 hex digits stay below 2^53, where JavaScript numbers are exact.
const MAX_SIZE_DIGITS = 13;
const MAX_LINE = 4096;
const MAX_TRAILER_BYTES = 16384;

export class ChunkedFramer implements BodyFramer {
  #s: S = S.Size;
  #size = 0;
  #digits = 0;
  #left = 0;
  #line = 0;
  #trailerBytes = 0;

  feed(buf: Buffer, start: number): FeedResult {
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
          else if (c === 59 || c === 32 || c === 9) {
            this.#s = S.Ext;
            this.#line = 0;
          } else return bad(i - start);
          i++;
          break;
        }
        case S.Ext:
          if (c === 13) this.#s = S.SizeLf;
          else if (c === 10 || ++this.#line > MAX_LINE) return bad(i - start);
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
            this.#line = 1;
          }
          if (++this.#trailerBytes > MAX_TRAILER_BYTES) return bad(i - start);
          i++;
          break;
        case S.TrailerLine:
          if (c === 13) this.#s = S.TrailerLf;
          else if (c === 10 || ++this.#line > MAX_LINE) return bad(i - start);
          if (++this.#trailerBytes > MAX_TRAILER_BYTES) return bad(i - start);
          i++;
          break;
        case S.TrailerLf:
          if (c !== 10) return bad(i - start);
          this.#s = S.TrailerStart;
          i++;
          break;
        case S.EndLf:
          if (c !== 10) return bad(i - start);
          this.#s = S.Done;
          return { consumed: i + 1 - start, done: true };
        default:
          return { consumed: i - start, done: true };
      }
    }
    return { consumed: i - start, done: false };
  }
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
