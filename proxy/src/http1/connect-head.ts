// The head of a CONNECT request (RFC 9110 section 9.3.6) as a forward proxy reads it: `CONNECT host:port
// HTTP/1.x`, then header lines, within the header size limit. Only the authority matters to the proxy; the header
// lines are checked for the same characters as any head (no CTL but HTAB) and otherwise ignored. Pure.
import { hostOf } from '../routing/service-host.js';

export type ConnectHead = { readonly authority: string; readonly length: number } | { readonly incomplete: true } | { readonly rejected: 'bad_request' | 'header_too_large' };

const HEAD_TEXT = /^[\t\x20-\x7e\x80-\xff]*(?:\r\n[\t\x20-\x7e\x80-\xff]*)*$/;
const REQUEST_LINE = /^CONNECT ((?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}) HTTP\/1\.[01]$/;

/** True while `buf` may still turn out to be a CONNECT request (a prefix of "CONNECT "). */
export function mayBeConnect(buf: Buffer): boolean {
  const n = Math.min(buf.length, 8);
  return buf.toString('latin1', 0, n) === 'CONNECT '.slice(0, n);
}

export function parseConnectHead(buf: Buffer, maxHeaderBytes: number): ConnectHead {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return buf.length > maxHeaderBytes ? { rejected: 'header_too_large' } : { incomplete: true };
  if (end + 4 > maxHeaderBytes) return { rejected: 'header_too_large' };
  const text = buf.toString('latin1', 0, end);
  if (!HEAD_TEXT.test(text)) return { rejected: 'bad_request' };
  const eol = text.indexOf('\r\n');
  const m = REQUEST_LINE.exec(eol < 0 ? text : text.slice(0, eol));
  // The host and port as any authority is checked (a port outside 1..65535 cannot be dialled).
  if (!m || hostOf(m[1]!) === null) return { rejected: 'bad_request' };
  return { authority: m[1]!, length: end + 4 };
}
