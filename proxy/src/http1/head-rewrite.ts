// Rebuilding heads on the way through: connection-specific (hop-by-hop) headers are dropped per RFC 9110
// section 7.6.1, including those the Connection header names; the proxy's own headers are added.
import type { RefusalReason } from '../../../common/refusal-reasons.js';
import { type HttpHead, headerTokens, lowerEquals } from './http1-head.js';
import type { ForwardPlan } from './http1-session-types.js';

/**
 * Always connection-specific: connection-fields.ts HTTP1_HOP_BY_HOP, the list this switch must match (a unit test
 * compares them). Transfer-Encoding is kept: bodies pass through with their framing intact. A switch, not a Set:
 * asked of every header of every head, whose names are new strings, and a Set would hash each one.
 */
export function isHopByHop(n: string): boolean {
  switch (n) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'te':
    case 'upgrade':
      return true;
    default:
      return false;
  }
}

/**
 * Fields a Connection header may not take away: the ones this proxy framed or routed the message by. A sender
 * must never name them (RFC 9110 section 7.6.1), and dropping one after reading it would hand the next hop a
 * message framed otherwise: "Connection: content-length" would turn a request's body into a second request the
 * policy never saw, "Connection: host" would strip the Host that was checked. Envoy and nginx do not drop them
 * either.
 */
function isFramingOrRouting(n: string): boolean {
  return n === 'content-length' || n === 'transfer-encoding' || n === 'host';
}

/** The fields the Connection header names, to drop as hop-by-hop; its own options and the fields above stay. */
export function connectionNamed(head: HttpHead): ReadonlySet<string> | null {
  const named = headerTokens(head, 'connection').filter((t) => t !== 'close' && t !== 'keep-alive' && !isFramingOrRouting(t));
  return named.length === 0 ? null : new Set(named);
}

function appendHeaders(out: string, head: HttpHead, strip: ReadonlySet<string> | undefined, strip2: FieldSet | null = null): string {
  const named = connectionNamed(head);
  for (let i = 0; i < head.names.length; i++) {
    const n = head.names[i]!;
    if (isHopByHop(n) || named?.has(n) || strip?.has(n) || strip2?.has(n)) continue;
    out += `${n}: ${head.values[i]}\r\n`;
  }
  return out;
}

/**
 * The head sent upstream: hop-by-hop headers and `plan.strip` removed, `plan.add` appended, `plan.target` (when
 * set) as the target. HTTP/1.1 requests go as HTTP/1.1. HTTP/1.0 ones go as HTTP/1.0, faithfully: the app then
 * knows it must not answer chunked (the 1.0 client could not read it) and a Host-less request stays valid rather
 * than becoming an HTTP/1.1 one with an empty Host, which strict servers refuse. They ask for keep-alive so the
 * pooled upstream connection survives; the client's own persistence is decided apart.
 */
export function upstreamRequestHead(head: HttpHead, plan: ForwardPlan, upgrade: string | null = null, raw: Buffer | null = null): Buffer {
  if (raw !== null && keepsRequestHead(raw, head, plan, upgrade)) return withAddedLines(raw, head.length, plan.add);
  const out = appendHeaders(`${head.method} ${plan.target ?? head.target} HTTP/1.${head.minor}\r\n`, head, plan.strip);
  // An allowed upgrade keeps its two hop-by-hop headers: they are what asks the app to switch.
  const hop = upgrade !== null ? `connection: upgrade\r\nupgrade: ${upgrade}\r\n` : head.minor === 0 ? 'connection: keep-alive\r\n' : '';
  return Buffer.from(`${out}${hop}${plan.add}\r\n`, 'latin1');
}

/**
 * Whether the head as sent (`raw`, starting at its request line) can go upstream with only `plan.add` appended:
 * HTTP/1.1, no upgrade, the same target, and no field to drop (hop-by-hop or `plan.strip`). The common request;
 * it then costs a copy instead of a rebuild. What goes is what was parsed and checked, byte for byte.
 */
function keepsRequestHead(raw: Buffer, head: HttpHead, plan: ForwardPlan, upgrade: string | null): boolean {
  if (upgrade !== null || head.minor !== 1 || plan.target !== undefined || raw[0] === 13) return false;
  const strip = plan.strip;
  for (const n of head.names) if (isHopByHop(n) || strip?.has(n)) return false;
  return true;
}

/** The head of `length` bytes at the start of `raw`, with `add` ("name: value\r\n" lines) before its final CRLF. */
function withAddedLines(raw: Buffer, length: number, add: string): Buffer {
  if (add === '') return raw.subarray(0, length);
  const at = length - 2;
  const out = Buffer.allocUnsafe(length + add.length);
  raw.copy(out, 0, 0, at);
  out.write(add, at, 'latin1');
  out[at + add.length] = 13;
  out[at + add.length + 1] = 10;
  return out;
}

/** Lines a session adds to every response head (`lines`), and the upstream fields they replace (`names`). */
export interface AddedResponseHeaders {
  readonly names: ReadonlySet<string>;
  readonly lines: string;
}

export function addedResponseHeaders(headers: Readonly<Record<string, string>> | undefined): AddedResponseHeaders | null {
  if (!headers || Object.keys(headers).length === 0) return null;
  let lines = '';
  for (const [n, v] of Object.entries(headers)) lines += `${n.toLowerCase()}: ${v}\r\n`;
  return { names: new Set(Object.keys(headers).map((n) => n.toLowerCase())), lines };
}

const isKeepAlive = (v: string) => v.length === 10 && lowerEquals(v, 0, 'keep-alive');

/**
 * Whether a response head can be forwarded byte for byte (`http10`: it answers an HTTP/1.0 client; `drop`: fields
 * that may not go on).
 */
export function responseNeedsRewrite(head: HttpHead, closing: boolean, http10: boolean, added: AddedResponseHeaders | null = null, drop: FieldSet | null = null): boolean {
  if (closing || http10 || added) return true;
  for (let i = 0; i < head.names.length; i++) {
    const n = head.names[i]!;
    if (drop?.has(n)) return true;
    // "Connection: keep-alive" (nginx's default) says of this hop what it says of the app's: it may stay.
    if (isHopByHop(n) && !(n === 'connection' && isKeepAlive(head.values[i]!))) return true;
  }
  return false;
}

/** Field names a head loses: all a rewrite asks of them is whether a name is one. */
export type FieldSet = Pick<ReadonlySet<string>, 'has'>;

/**
 * `drop` and the fields that frame a body: what a 204's head loses. A 204 has no body whatever its head says, and
 * may not say otherwise (RFC 9112 section 6.1): a client that took its Transfer-Encoding or Content-Length for
 * framing would read the next answer on its connection as this one's body.
 */
export function withoutBodyFraming(drop: FieldSet | null): FieldSet {
  return { has: (n) => n === 'transfer-encoding' || n === 'content-length' || (drop?.has(n) ?? false) };
}

/**
 * An interim (1xx) or 101 head as the app sent it (`raw` from its status line), without the fields of `drop`; its
 * hop-by-hop fields stay (a 101's Upgrade and Connection are what it says). Null when it holds none of them.
 */
export function interimHeadWithout(raw: Buffer, head: HttpHead, drop: ReadonlySet<string>): Buffer | null {
  if (!head.names.some((n) => drop.has(n))) return null;
  let out = raw.toString('latin1', 0, raw.indexOf('\r\n') + 2);
  for (let i = 0; i < head.names.length; i++) if (!drop.has(head.names[i]!)) out += `${head.names[i]}: ${head.values[i]}\r\n`;
  return Buffer.from(`${out}\r\n`, 'latin1');
}

/** An HTTP/1.0 client assumes the connection closes unless the response says keep-alive. */
export function downstreamResponseHead(raw: Buffer, head: HttpHead, closing: boolean, http10: boolean, added: AddedResponseHeaders | null = null, drop: FieldSet | null = null): Buffer {
  const statusLine = raw.toString('latin1', 0, raw.indexOf('\r\n'));
  const out = appendHeaders(`HTTP/1.1${statusLine.slice(8)}\r\n`, head, added?.names, drop);
  return Buffer.from(`${out}${added?.lines ?? ''}${closing ? 'connection: close\r\n' : http10 ? 'connection: keep-alive\r\n' : ''}\r\n`, 'latin1');
}

/** Reason phrases of the statuses the refusal reasons are answered with (test/unit/proxy/http1/local-response.test.ts). */
const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/**
 * A response the proxy makes itself: a short reason from the one list (common/refusal-reasons.ts), nothing internal.
 * To a HEAD request without its body (RFC 9110 section 9.3.2), the length a GET would get kept: a client reads no
 * body after a HEAD answer, so the bytes would be read as the start of the next answer on the connection.
 */
export function localResponse(status: number, code: RefusalReason, close: boolean, added: AddedResponseHeaders | null = null, headRequest = false): Buffer {
  const body = `${code}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-tessera-error: ${code}\r\n${added?.lines ?? ''}${close ? 'connection: close\r\n' : ''}\r\n${headRequest ? '' : body}`,
    'latin1',
  );
}
