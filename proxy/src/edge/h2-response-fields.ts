// The fields of an HTTP/1.1 upstream's response that the edge's HTTP/2 client gets: connection-specific ones
// dropped (RFC 9110 section 7.6.1, RFC 9113 section 8.2.2) — the fixed ones, and those the response's own
// Connection header names, in its head and its trailers, as the HTTP/1.1 paths drop them (http1/head-rewrite.ts).
// TE and HTTP2-Settings are connection-specific too, and Node's respond() throws on them: one left in killed the
// process from an upstream's answer. The list: http1/connection-fields.ts H2_RESPONSE_DROP.
import type { OutgoingHttpHeaders } from 'node:http';
import { H2_RESPONSE_DROP } from '../http1/connection-fields.js';

/**
 * `h` (Node's parsed head or trailers, lower-case names) without the connection-specific fields; `named`: those the
 * response's Connection header names (head-rewrite.ts connectionNamed, which never names the framing fields).
 */
export function h2ResponseFields(h: NodeJS.Dict<string | string[]>, named: ReadonlySet<string> | null): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !H2_RESPONSE_DROP.has(k) && !named?.has(k)) out[k] = v;
  }
  return out;
}
