// Tessera's reading of a raw HTTP/1.1 byte stream, through its own head parser and body framers: the messages it
// would accept (head, decoded body, whether the body ended) and how the stream ended. Compared against llhttp.
import { type BodyFramer, framerFor } from '../../proxy/src/http1/body-framer.js';
import { downstreamResponseHead, responseNeedsRewrite, upstreamRequestHead } from '../../proxy/src/http1/head-rewrite.js';
import { type HeadLimits, type HttpHead, parseHead, requestFraming, responseFraming, wantsKeepAlive } from '../../proxy/src/http1/http1-head.js';

export interface TesseraMessage {
  /** Method, or status as a string. */
  readonly start: string;
  readonly target: string;
  readonly headers: readonly (readonly [string, string])[];
  /** The body as the app would read it (chunked framing removed). */
  readonly body: Buffer;
  /** The framer found the end of the body. */
  readonly complete: boolean;
  /** The bytes the session passes on: upstream for a request, downstream (1xx heads included) for a response. */
  readonly forwarded: Buffer;
}

export interface TesseraStream {
  readonly messages: TesseraMessage[];
  /** refused: a head or body Tessera rejects; closed: a message that ends the connection was complete. */
  readonly end: 'refused' | 'incomplete' | 'clean' | 'closed';
}

export const VIEW_LIMITS: HeadLimits = { maxHeaderBytes: 16_384, maxHeaders: 100 };

/** Removes chunked framing from bytes a ChunkedFramer already accepted. */
export function dechunk(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', i, 'latin1');
    const sizeText = /^[0-9a-fA-F]+/.exec(raw.toString('latin1', i, eol))![0];
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) return Buffer.concat(out);
    out.push(raw.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

interface Body {
  readonly body: Buffer;
  readonly raw: Buffer;
  readonly complete: boolean;
  readonly next: number;
}

function body(framer: BodyFramer | null, chunked: boolean, input: Buffer, at: number): Body | 'refused' {
  if (!framer) return { body: Buffer.alloc(0), raw: Buffer.alloc(0), complete: true, next: at };
  const r = framer.feed(input, at);
  if (r.error) return 'refused';
  const raw = input.subarray(at, at + r.consumed);
  if (!r.done) return { body: chunked ? Buffer.alloc(0) : raw, raw, complete: false, next: at + r.consumed };
  return { body: chunked ? dechunk(raw) : raw, raw, complete: true, next: at + r.consumed };
}

function message(head: HttpHead, b: Body, forwardedHead: Buffer): TesseraMessage {
  const start = head.method ?? String(head.status);
  const forwarded = Buffer.concat([forwardedHead, b.raw]);
  return { start, target: head.target ?? '', headers: head.names.map((n, i) => [n, head.values[i]!] as const), body: b.body, complete: b.complete, forwarded };
}

/** Pipelined requests, read the way the HTTP/1.1 session reads them; `input` then EOF. */
export function tesseraRequests(input: Buffer, limits: HeadLimits = VIEW_LIMITS): TesseraStream {
  const messages: TesseraMessage[] = [];
  let pos = 0;
  for (;;) {
    if (pos === input.length) return { messages, end: 'clean' };
    const r = parseHead(input, pos, 'request', limits);
    if ('incomplete' in r) return { messages, end: 'incomplete' };
    if ('rejected' in r) return { messages, end: 'refused' };
    const framing = requestFraming(r.head);
    if (typeof framing === 'string') return { messages, end: 'refused' };
    const b = body(framerFor(framing), framing.kind === 'chunked', input, pos + r.head.length);
    if (b === 'refused') return { messages, end: 'refused' };
    messages.push(message(r.head, b, upstreamRequestHead(r.head, { add: '' }, null, input.subarray(pos))));
    if (!b.complete) return { messages, end: 'incomplete' };
    if (!wantsKeepAlive(r.head)) return { messages, end: 'closed' };
    pos = b.next;
  }
}

/**
 * The final response to a keep-alive HTTP/1.1 `method` request (interim 1xx heads passed on), body read until
 * `input` ends; `forwarded` is what the session writes to the client, as it decides for a response.
 */
export function tesseraResponse(input: Buffer, method: string, limits: HeadLimits = VIEW_LIMITS): TesseraStream {
  let pos = 0;
  for (;;) {
    const r = parseHead(input, pos, 'response', limits);
    if ('incomplete' in r) return { messages: [], end: 'incomplete' };
    if ('rejected' in r || r.head.status === 101) return { messages: [], end: 'refused' };
    if (r.head.status! < 200) {
      pos += r.head.length;
      continue;
    }
    const framing = responseFraming(r.head, method);
    if (typeof framing === 'string') return { messages: [], end: 'refused' };
    const b = body(framerFor(framing), framing.kind === 'chunked', input, pos + r.head.length);
    if (b === 'refused') return { messages: [], end: 'refused' };
    // A close-delimited body ends with the connection: at EOF it is complete.
    const complete = b.complete || framing.kind === 'close';
    const rawHead = input.subarray(pos, pos + r.head.length);
    const closing = framing.kind === 'close';
    const head = responseNeedsRewrite(r.head, closing, false) ? downstreamResponseHead(rawHead, r.head, closing, false) : rawHead;
    return { messages: [message(r.head, { ...b, complete }, Buffer.concat([input.subarray(0, pos), head]))], end: complete ? 'closed' : 'incomplete' };
  }
}
