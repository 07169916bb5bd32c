// Rebuilding heads on the way through: connection-specific (hop-by-hop) headers are dropped per RFC 9110
// section 7.6.1, including those the Connection header names; the proxy's own headers are added.
import { type HttpHead, headerTokens } from './http1-head.js';

/** Always connection-specific. Transfer-Encoding is kept: bodies pass through with their framing intact. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade']);

function dropped(head: HttpHead): ReadonlySet<string> | null {
  const named = headerTokens(head, 'connection').filter((t) => t !== 'close' && t !== 'keep-alive' && t !== 'transfer-encoding');
  return named.length === 0 ? null : new Set(named);
}

function appendHeaders(out: string, head: HttpHead, strip: ReadonlySet<string> | undefined): string {
  const named = dropped(head);
  for (let i = 0; i < head.names.length; i++) {
    const n = head.names[i]!;
    if (HOP_BY_HOP.has(n) || named?.has(n) || strip?.has(n)) continue;
    out += `${n}: ${head.values[i]}\r\n`;
  }
  return out;
}

/**
 * The head sent upstream: always HTTP/1.1 (a proxy sends its own version), hop-by-hop headers and `strip`
 * removed, `add` (complete "name: value\r\n" lines) appended.
 */
export function upstreamRequestHead(head: HttpHead, strip: ReadonlySet<string> | undefined, add: string): Buffer {
  let out = appendHeaders(`${head.method} ${head.target} HTTP/1.1\r\n`, head, strip);
  // HTTP/1.1 requires Host; an HTTP/1.0 request may lack it, and then it is sent empty (RFC 9112 section 3.2).
  if (!head.names.includes('host')) out += 'host: \r\n';
  return Buffer.from(`${out}${add}\r\n`, 'latin1');
}

/** Whether a response head can be forwarded byte for byte. */
export function responseNeedsRewrite(head: HttpHead, closing: boolean): boolean {
  if (closing) return true;
  for (const n of head.names) if (HOP_BY_HOP.has(n)) return true;
  return false;
}

export function downstreamResponseHead(raw: Buffer, head: HttpHead, closing: boolean): Buffer {
  const statusLine = raw.toString('latin1', 0, raw.indexOf('\r\n'));
  const out = appendHeaders(`HTTP/1.1${statusLine.slice(8)}\r\n`, head, undefined);
  return Buffer.from(`${out}${closing ? 'connection: close\r\n' : ''}\r\n`, 'latin1');
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A response the proxy makes itself: a short stable code and nothing internal. */
export function localResponse(status: number, code: string, close: boolean): Buffer {
  const body = `${code}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-tessera-error: ${code}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`,
    'latin1',
  );
}
