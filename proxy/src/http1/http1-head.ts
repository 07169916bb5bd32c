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
// Visible ASCII without "#": a fragment is never part of a request target (RFC 9112 section 3.2), and an app
// that parses one differently from the policy would route a path the policy never saw.
// Only origin-form, absolute-form or "*": llhttp refuses any other target ("h:443", "a", "?x") on a non-CONNECT
// request. In absolute-form, llhttp takes a scheme of letters only ("h0ttp://", "h-t://" are refused) and an
// authority of RFC 3986's characters (unreserved, sub-delims, "%", ":", "@", "[", "]"; not `"`, "{", "|", "\\"...).
const TARGET = /^(?:\*|\/[\x21\x22\x24-\x7e]*|[A-Za-z]+:\/\/[A-Za-z0-9\-._~!$&'()*+,;=:%@[\]]*(?:[/?][\x21\x22\x24-\x7e]*)?)$/;

// A head's text between its first byte and its final CRLFCRLF: field-value characters, lines joined by CRLF.
const HEAD_TEXT = /^[\t\x20-\x7e\x80-\xff]*(?:\r\n[\t\x20-\x7e\x80-\xff]*)*$/;

/** TOKEN's characters (RFC 9110 tchar) by char code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** TOKEN.test(text.slice(a, b)) for a non-empty range, without the slice. */
function isToken(text: string, a: number, b: number): boolean {
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Whether a method token has a lower-case letter. Methods are case-sensitive (RFC 9110 section 9.1), so "delete"
 * is not DELETE to a policy; but apps disagree (llhttp refuses it, others fold it to DELETE), so a rule about
 * DELETE could be walked around. No standard method has one: such a request is refused on every listener.
 */
export function hasLowerCase(method: string): boolean {
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i);
    if (c >= 97 && c <= 122) return true;
  }
  return false;
}

/** Whether text[a..b) is all ASCII digits, and text that long (a status code, a Content-Length). */
function isDigits(text: string, a: number, b: number): boolean {
  if (text.length < b) return false;
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** text.slice(a, b) without the optional whitespace at either end (see trimOws). */
function trimmedSlice(text: string, a: number, b: number): string {
  const from = owsEnd(text, a, b);
  return text.slice(from, owsStart(text, from, b));
}

/** Optional whitespace is SP and HTAB only (RFC 9110 section 5.6.3); String.trim would also eat VT, FF, NBSP. */
function trimOws(s: string): string {
  const a = owsEnd(s, 0, s.length);
  const b = owsStart(s, a, s.length);
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** The first index in [a, b) that is not optional whitespace, or b. */
function owsEnd(s: string, a: number, b: number): number {
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  return a;
}

/** Where the optional whitespace that ends [a, b) starts, or b. */
function owsStart(s: string, a: number, b: number): number {
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return b;
}

/**
 * Interim (1xx) heads relayed per response, HTTP/1.1 and HTTP/2; one more is a 502. HTTP/2 HEADERS frames are not
 * flow-controlled: an app sending 103s without end to a caller that did not read grew both sidecars by hundreds of
 * MB and took the listener's shared session to the app down for every other caller. A response has a 100 Continue
 * and a few Early Hints at most.
 */
export const MAX_INTERIM_HEADS = 8;
/** Bytes of those interim heads together (names and values): eight of 16 KiB each times many streams was ~1 GB. */
export const MAX_INTERIM_BYTES = 16 * 1024;

// A Buffer needle: a string one is converted to bytes again on every search.
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Reads up to this size are searched for the head's end as text (below); larger ones as bytes, not decoded whole. */
const SEARCH_AS_TEXT = 2048;
const INCOMPLETE = Object.freeze({ incomplete: true as const });
const rejected = (r: HeadRejection): HeadResult => ({ rejected: r });

/** Whether buf[from..] holds an LF not preceded by a CR (only searched while a head is incomplete). */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) if (i === from || buf[i - 1] !== 13) return true;
  return false;
}

/** Finds and parses one head at `start`; `incomplete` means more bytes are needed (within the limit). */
export function parseHead(buf: Buffer, start: number, kind: 'request' | 'response', limits: HeadLimits): HeadResult {
  // Tolerate empty lines before a request (RFC 9112 section 2.2).
  let from = start;
  while (kind === 'request' && from + 1 < buf.length && buf[from] === 13 && buf[from + 1] === 10) from += 2;
  let end: number;
  let text: string;
  if (buf.length - from <= SEARCH_AS_TEXT) {
    // A small read (a whole head, or a head and a small body): decoded once and searched as a string, which costs
    // one call into C++ where a Buffer search costs two.
    const all = buf.toString('latin1', from);
    const at = all.indexOf('\r\n\r\n');
    end = at < 0 ? -1 : from + at;
    text = at < 0 ? '' : all.slice(0, at);
  } else {
    end = buf.indexOf(HEAD_END, from);
    text = end < 0 ? '' : buf.toString('latin1', from, end);
  }
  if (end < 0) {
    if (buf.length - start > limits.maxHeaderBytes) return rejected('header_too_large');
    // A head whose lines end in a bare LF never gets its CRLF CRLF: refused now, not after the head deadline.
    return hasBareLf(buf, from) ? rejected('bad_request') : INCOMPLETE;
  }
  if (end + 4 - start > limits.maxHeaderBytes) return rejected('header_too_large');
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const first = text.slice(0, eol);
  const names: string[] = [];
  const values: string[] = [];
  // Field lines read in place (no split, one slice per name and per value); a bad one is remembered rather than
  // returned so that too many headers is still the answer when both apply.
  let bad = false;
  let count = 0;
  for (let pos = eol + 2; pos <= text.length && eol < text.length; pos = eol + 2) {
    eol = text.indexOf('\r\n', pos);
    if (eol < 0) eol = text.length;
    if (++count > limits.maxHeaders) return rejected('too_many_headers');
    if (bad) continue;
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon >= eol || !isToken(text, pos, colon)) {
      bad = true;
      continue;
    }
    const lower = text.slice(pos, colon).toLowerCase();
    // llhttp reads "chunked<HTAB>" as a coding other than chunked (it trims only spaces there): refuse the doubt.
    if (text.charCodeAt(eol - 1) === 9 && lower === 'transfer-encoding') bad = true;
    names.push(lower);
    values.push(trimmedSlice(text, colon + 1, eol));
  }
  // Field values (and, by their own stricter rules below, the start line) hold no CTL but HTAB: one scan of the
  // whole head instead of one per line. A CR or LF not in a CRLF pair fails here too.
  if (bad || !HEAD_TEXT.test(text)) return rejected('bad_request');
  const length = end + 4 - start;
  if (kind === 'request') {
    const sp1 = first.indexOf(' ');
    const sp2 = first.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 === sp1) return rejected('bad_request');
    const method = first.slice(0, sp1);
    const target = first.slice(sp1 + 1, sp2);
    const minor = versionMinor(first.slice(sp2 + 1));
    // CONNECT is refused: there are no tunnels here, and an app parser switches to raw bytes after it, so what we
    // read next as requests it would read as tunnel data.
    if (minor === null || !isToken(first, 0, sp1) || hasLowerCase(method) || method === 'CONNECT' || !TARGET.test(target)) return rejected('bad_request');
    return { head: { method, target, minor, names, values, length } };
  }
  const minor = versionMinor(first.slice(0, 8));
  const code = first.slice(9, 12);
  // Exactly three digits, then a space or the end ("2000", "1e2" and "+99" are not status codes); the reason
  // phrase is field-value text (a bare LF in it would start a header for a lenient client).
  if (minor === null || first[8] !== ' ' || !isDigits(first, 9, 12) || (first.length > 12 && first[12] !== ' ') || (first.length > 13 && !FIELD_VALUE.test(first.slice(13)))) {
    return rejected('bad_request');
  }
  const status = Number(code);
  // RFC 9110 section 15: codes outside 100-599 are invalid (libraries use 600-999 for their own errors). Refused as
  // the HTTP/2 paths refuse them (node:http2 will not send one), so every client kind gets the same 502.
  if (status < 100 || status > 599) return rejected('bad_request');
  // An interim response has no body and may not say otherwise (RFC 9110 section 8.6, RFC 9112 section 6.1): a
  // client that reads one would take the final response as its body. Nor is there one in HTTP/1.0 (RFC 9110
  // section 15.2): llhttp reads "HTTP/1.0 1xx" as the connection's last message, and the final response after it
  // as an error. It is passed on as is, so refuse it here.
  if (status < 200 && (minor === 0 || names.includes('content-length') || names.includes('transfer-encoding'))) return rejected('bad_request');
  return { head: { status, minor, names, values, length } };
}

/**
 * The colon's index in a valid field line ("name: value" without CRLF; heads and chunked trailers alike), or -1.
 * Obs-fold continuation lines are invalid (no name).
 */
export function fieldLineColon(line: string): number {
  const colon = line.indexOf(':');
  if (colon <= 0 || !TOKEN.test(line.slice(0, colon)) || !FIELD_VALUE.test(line.slice(colon + 1))) return -1;
  return colon;
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

/**
 * All of a field's lines as one value, joined by ", " (RFC 9110 section 5.3), as HTTP/2 hands them over: a field
 * that must appear once (traceparent) then fails to parse whole on every protocol alike, instead of one line of it
 * being taken.
 */
export function joinedHeaderValue(head: HttpHead, name: string): string | undefined {
  const i = head.names.indexOf(name);
  if (i < 0) return undefined;
  let v = head.values[i]!;
  for (let j = head.names.indexOf(name, i + 1); j >= 0; j = head.names.indexOf(name, j + 1)) v += `, ${head.values[j]}`;
  return v;
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

/**
 * The transfer codings, lower-cased, or null when the list has an empty element or "chunked" before its end:
 * llhttp refuses "chunked,", an empty Transfer-Encoding line and "chunked, chunked", so passing them on would
 * split the readings.
 */
function transferCodings(head: HttpHead): string[] | null {
  const out: string[] = [];
  for (let i = 0; i < head.names.length; i++) {
    if (head.names[i] !== 'transfer-encoding') continue;
    for (const t of head.values[i]!.split(',')) {
      const v = trimOws(t).toLowerCase();
      if (!v) return null;
      out.push(v);
    }
  }
  const c = out.indexOf('chunked');
  return c >= 0 && c < out.length - 1 ? null : out;
}

export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

/**
 * How a request body is delimited. Transfer-Encoding together with Content-Length, differing Content-Length
 * values, or codings not ending in "chunked" are refused: these are the smuggling vectors. Other codings before
 * a final "chunked" are valid but not implemented.
 */
export function requestFraming(head: HttpHead): BodyFraming | 'bad_request' | 'not_implemented' {
  const te = transferCodings(head);
  const cl = contentLength(head);
  // The header's presence counts, not its tokens: an empty Transfer-Encoding is still forwarded.
  if (head.names.includes('transfer-encoding')) {
    // Without a final "chunked" the body length cannot be known: 400 (RFC 9112 section 6.3), not 501.
    if (te === null || cl !== undefined || head.minor === 0 || te[te.length - 1] !== 'chunked') return 'bad_request';
    return te.length === 1 ? { kind: 'chunked' } : 'not_implemented';
  }
  if (cl === null) return 'bad_request';
  return cl === undefined || cl === 0 ? { kind: 'none' } : { kind: 'length', length: cl };
}

/**
 * How a response body is delimited, given the request it answers (RFC 9112 section 6.3), with the rules requests
 * get: Transfer-Encoding together with Content-Length, an invalid or repeated Content-Length, codings not ending
 * in "chunked", or Transfer-Encoding on an HTTP/1.0 response are refused (a CL-trusting client or cache behind
 * the proxy would frame such a response differently from us). Checked before the bodiless cases, so a 204 or an
 * answer to HEAD cannot carry them either.
 */
export function responseFraming(head: HttpHead, requestMethod: string): BodyFraming | 'bad_request' {
  const s = head.status!;
  const hasTe = head.names.includes('transfer-encoding');
  const cl = contentLength(head);
  if (cl === null) return 'bad_request';
  if (hasTe) {
    const te = transferCodings(head);
    if (te === null || cl !== undefined || head.minor === 0 || te[te.length - 1] !== 'chunked') return 'bad_request';
  }
  if (requestMethod === 'HEAD' || s === 204 || s === 304 || (s >= 100 && s < 200)) return { kind: 'none' };
  if (hasTe) return { kind: 'chunked' };
  if (cl === undefined) return { kind: 'close' };
  return cl === 0 ? { kind: 'none' } : { kind: 'length', length: cl };
}

/**
 * undefined = absent; null = invalid, or present more than once (even with equal values: llhttp, which Node
 * clients and apps use, refuses a repeated Content-Length, so forwarding one would desync them from us).
 */
function contentLength(head: HttpHead): number | undefined | null {
  const i = head.names.indexOf('content-length');
  if (i < 0) return undefined;
  if (head.names.lastIndexOf('content-length') !== i) return null;
  const v = head.values[i]!;
  return v.length >= 1 && v.length <= 15 && isDigits(v, 0, v.length) ? Number(v) : null;
}

/**
 * The head of a response that Node's own parser (llhttp) read, for the framing checks above: the edge's
 * upstream responses get the same rules as the sidecars'.
 */
export function headOfParsedResponse(status: number, minor: number, rawHeaders: readonly string[]): HttpHead {
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    names.push(rawHeaders[i]!.toLowerCase());
    values.push(trimOws(rawHeaders[i + 1]!));
  }
  return { status, minor: minor === 0 ? 0 : 1, names, values, length: 0 };
}

/** Whether the client asked to keep the connection open after this exchange. */
export function wantsKeepAlive(head: HttpHead): boolean {
  if (hasToken(head, 'connection', 'close')) return false;
  return head.minor === 1 || hasToken(head, 'connection', 'keep-alive');
}

/**
 * Whether `headerTokens(head, name)` includes `token` (lower-case), read in place: asked of every request and
 * response (Connection), so it builds no list and no lower-cased copy.
 */
export function hasToken(head: HttpHead, name: string, token: string): boolean {
  for (let i = 0; i < head.names.length; i++) {
    if (head.names[i] !== name) continue;
    const v = head.values[i]!;
    for (let a = 0; a <= v.length; ) {
      let b = v.indexOf(',', a);
      if (b < 0) b = v.length;
      if (elementIs(v, a, b, token)) return true;
      a = b + 1;
    }
  }
  return false;
}

/** Whether v.slice(a, b), without optional whitespace at either end and lower-cased, is `token`. */
function elementIs(v: string, a: number, b: number, token: string): boolean {
  const from = owsEnd(v, a, b);
  return owsStart(v, from, b) - from === token.length && lowerEquals(v, from, token);
}

/**
 * Whether `token` (lower-case ASCII) is at `at` in `v`, ASCII letters compared without case: what comparing
 * toLowerCase() would say, since no other Latin-1 character lower-cases to ASCII.
 */
export function lowerEquals(v: string, at: number, token: string): boolean {
  for (let i = 0; i < token.length; i++) {
    let c = v.charCodeAt(at + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== token.charCodeAt(i)) return false;
  }
  return true;
}
