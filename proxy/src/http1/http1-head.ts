// HTTP/1.1 message heads (RFC 9112): found in a byte stream, parsed under hard limits, and checked for the
// framing ambiguities request smuggling lives on. Parsing never throws; a bad head is a typed rejection.

export interface HeadLimits {
  /** Request line + headers, bytes. */
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
}

export interface HttpHead {
  /** Request: method; response: undefined. */
  readonly method?: string;
  readonly target?: string;
  readonly status?: number;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Header names lower-cased, in order; values trimmed. */
  readonly names: string[];
  readonly values: string[];
  /** Byte length of the head in the buffer it was parsed from, final CRLFCRLF included. */
  readonly length: number;
}

export type HeadRejection = 'header_too_large' | 'too_many_headers' | 'bad_request';

export type HeadResult = { readonly head: HttpHead } | { readonly incomplete: true } | { readonly rejected: HeadRejection };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^[\x21-\x7e]+$/;
const STATUS = /^\d{3}$/;

/** Optional whitespace is SP and HTAB only (RFC 9110 section 5.6.3); String.trim would also eat VT, FF, NBSP. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const INCOMPLETE = Object.freeze({ incomplete: true as const });
const rejected = (r: HeadRejection): HeadResult => ({ rejected: r });

/** Finds and parses one head at `start`; `incomplete` means more bytes are needed (within the limit). */
export function parseHead(buf: Buffer, start: number, kind: 'request' | 'response', limits: HeadLimits): HeadResult {
  // Tolerate empty lines before a request (RFC 9112 section 2.2).
  let from = start;
  while (kind === 'request' && from + 1 < buf.length && buf[from] === 13 && buf[from + 1] === 10) from += 2;
  const end = buf.indexOf('\r\n\r\n', from, 'latin1');
  if (end < 0) return buf.length - start > limits.maxHeaderBytes ? rejected('header_too_large') : INCOMPLETE;
  if (end + 4 - start > limits.maxHeaderBytes) return rejected('header_too_large');
  const lines = buf.toString('latin1', from, end).split('\r\n');
  if (lines.length - 1 > limits.maxHeaders) return rejected('too_many_headers');
  const first = lines[0]!;
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return rejected('bad_request'); // also refuses obs-fold continuation lines
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return rejected('bad_request');
    const value = trimOws(line.slice(colon + 1));
    if (!FIELD_VALUE.test(value)) return rejected('bad_request');
    names.push(name.toLowerCase());
    values.push(value);
  }
  const length = end + 4 - start;
  if (kind === 'request') {
    const sp1 = first.indexOf(' ');
    const sp2 = first.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 === sp1) return rejected('bad_request');
    const method = first.slice(0, sp1);
    const target = first.slice(sp1 + 1, sp2);
    const minor = versionMinor(first.slice(sp2 + 1));
    if (minor === null || !TOKEN.test(method) || !TARGET.test(target)) return rejected('bad_request');
    return { head: { method, target, minor, names, values, length } };
  }
  const minor = versionMinor(first.slice(0, 8));
  const code = first.slice(9, 12);
  // Exactly three digits, then a space or the end ("2000", "1e2" and "+99" are not status codes).
  if (minor === null || first[8] !== ' ' || !STATUS.test(code) || (first.length > 12 && first[12] !== ' ')) return rejected('bad_request');
  const status = Number(code);
  if (status < 100) return rejected('bad_request');
  return { head: { status, minor, names, values, length } };
}

function versionMinor(v: string): 0 | 1 | null {
  if (v === 'HTTP/1.1') return 1;
  if (v === 'HTTP/1.0') return 0;
  return null;
}

export function headerValue(head: HttpHead, name: string): string | undefined {
  const i = head.names.indexOf(name);
  return i < 0 ? undefined : head.values[i];
}

/** Every value of a header that may be repeated or comma-joined, lower-cased and split. */
export function headerTokens(head: HttpHead, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < head.names.length; i++) {
    if (head.names[i] !== name) continue;
    for (const t of head.values[i]!.split(',')) {
      const v = trimOws(t).toLowerCase();
      if (v) out.push(v);
    }
  }
  return out;
}

export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

/**
 * How a request body is delimited. Transfer-Encoding together with Content-Length, differing Content-Length
 * values, or codings not ending in "chunked" are refused: these are the smuggling vectors. Other codings before
 * a final "chunked" are valid but not implemented.
 */
export function requestFraming(head: HttpHead): BodyFraming | 'bad_request' | 'not_implemented' {
  const te = headerTokens(head, 'transfer-encoding');
  const cl = contentLength(head);
  // The header's presence counts, not its tokens: an empty Transfer-Encoding is still forwarded.
  if (head.names.includes('transfer-encoding')) {
    // Without a final "chunked" the body length cannot be known: 400 (RFC 9112 section 6.3), not 501.
    if (cl !== undefined || head.minor === 0 || te[te.length - 1] !== 'chunked') return 'bad_request';
    return te.length === 1 ? { kind: 'chunked' } : 'not_implemented';
  }
  if (cl === null) return 'bad_request';
  return cl === undefined || cl === 0 ? { kind: 'none' } : { kind: 'length', length: cl };
}

/** How a response body is delimited, given the request it answers (RFC 9112 section 6.3). */
export function responseFraming(head: HttpHead, requestMethod: string): BodyFraming | 'bad_request' {
  const s = head.status!;
  if (requestMethod === 'HEAD' || s === 204 || s === 304 || (s >= 100 && s < 200)) return { kind: 'none' };
  const te = headerTokens(head, 'transfer-encoding');
  if (head.names.includes('transfer-encoding')) return te[te.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  const cl = contentLength(head);
  if (cl === null) return 'bad_request';
  if (cl === undefined) return { kind: 'close' };
  return cl === 0 ? { kind: 'none' } : { kind: 'length', length: cl };
}

/** undefined = absent; null = invalid or conflicting. */
function contentLength(head: HttpHead): number | undefined | null {
  let found: number | undefined;
  for (let i = 0; i < head.names.length; i++) {
    if (head.names[i] !== 'content-length') continue;
    for (const part of head.values[i]!.split(',')) {
      const t = trimOws(part);
      if (!/^\d{1,15}$/.test(t)) return null;
      const n = Number(t);
      if (found !== undefined && found !== n) return null;
      found = n;
    }
  }
  return found;
}

/** Whether the client asked to keep the connection open after this exchange. */
export function wantsKeepAlive(head: HttpHead): boolean {
  const conn = headerTokens(head, 'connection');
  if (conn.includes('close')) return false;
  return head.minor === 1 || conn.includes('keep-alive');
}
