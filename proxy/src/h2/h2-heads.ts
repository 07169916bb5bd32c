// The heads of a forwarded HTTP/2 stream: the request fields sent upstream (connection-specific ones and the
// pseudo-headers the upstream sets itself removed), the response fields relayed, and the proxy's own answers (a
// local error; a 400 to a request that could be read two ways). Apart from h2-forward.ts, the stream's lifecycle.
import type * as http2 from 'node:http2';
import type { RefusalReason } from '../../../common/refusal-reasons.js';
import { H2_REQUEST_DROP, H2_RESPONSE_DROP } from '../http1/connection-fields.js';
import { hasLowerCase } from '../http1/http1-head.js';
import { isValidHostValue } from '../http1/host-value.js';

const GRPC_INTERNAL = 13;
const GRPC_TYPE = 'application/grpc';

/**
 * A gRPC call, by its content-type (`application/grpc`, `…+proto`, `…+json`) in any case: media types are
 * case-insensitive (RFC 9110 §8.3.1), and a spelling that escaped this would escape the gRPC rules too (never
 * replayed, errors as trailers).
 */
export function isGrpcContentType(value: string | string[] | undefined): boolean {
  return typeof value === 'string' && value.length >= GRPC_TYPE.length && value.slice(0, GRPC_TYPE.length).toLowerCase() === GRPC_TYPE;
}

const KEEP_PSEUDO: ReadonlySet<string> = new Set([':method', ':path', ':authority']);

/**
 * The request's own authority: `:authority`, else `host` (RFC 9113 section 8.3.1 lets a client send either; Node's
 * client sends only `host` when given one). What the edge routes by and what every next hop is told: nghttp2 refuses
 * a request with neither or with an empty one, so a forwarded request always has one.
 */
export function requestAuthority(h: http2.IncomingHttpHeaders): string | undefined {
  const a = h[':authority'] ?? h.host;
  return typeof a === 'string' ? a : undefined;
}

/**
 * The fields of a request forwarded over HTTP/2. `host` is dropped (H2_REQUEST_DROP), so a request that carried
 * only `host` gets it as `:authority`: without one node:http2's client names its session's, the next hop's address.
 * When both came, `:authority` is the one routed by and kept.
 */
export function requestHeaders(incoming: http2.IncomingHttpHeaders, strip: ReadonlySet<string>, add: Readonly<Record<string, string>>): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined) continue;
    if (k.startsWith(':') ? !KEEP_PSEUDO.has(k) : H2_REQUEST_DROP.has(k) || strip.has(k)) continue;
    // `te: trailers` in any case (nghttp2 compares it so, node:http2's client throws on anything but lower case).
    if (k === 'te') {
      if (typeof v === 'string' && v.toLowerCase() === 'trailers') out.te = 'trailers';
      continue;
    }
    out[k] = v;
  }
  const authority = requestAuthority(incoming);
  if (authority !== undefined) out[':authority'] = authority;
  return Object.assign(out, add);
}

export function responseHeaders(h: http2.IncomingHttpHeaders, drop: ReadonlySet<string> | undefined): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || (k.startsWith(':') && k !== ':status') || H2_RESPONSE_DROP.has(k) || drop?.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * True while `stream` can still take a response head: node:http2 throws from respond() on a stream that is closed
 * (the client reset it) even before it is destroyed, and a throw there, from a timer or an upstream's event, would
 * be an uncaught exception.
 */
export function canRespond(stream: http2.ServerHttp2Stream): boolean {
  return !stream.destroyed && !stream.closed && !stream.headersSent;
}

/** Answers locally: gRPC errors as trailers-only responses, HTTP/2 with a status and a short code. */
export function respondLocal(stream: http2.ServerHttp2Stream, grpc: boolean, status: number, code: RefusalReason, grpcStatus: number): void {
  if (!canRespond(stream)) return;
  if (grpc) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': code }, { endStream: true });
  } else {
    // To a HEAD request node:http2 ends the stream with the head, and a body written after it is a stream error
    // (ERR_STREAM_WRITE_AFTER_END). `headRequest` is node:http2's own flag for it, not in its typings.
    if ((stream as { readonly headRequest?: boolean }).headRequest === true) return void stream.respond({ ':status': status, 'content-type': 'text/plain', 'x-tessera-error': code }, { endStream: true });
    stream.respond({ ':status': status, 'content-type': 'text/plain', 'x-tessera-error': code });
    stream.end(`${code}\n`);
  }
}

/** An absent field, or one value in the Host grammar. */
function authorityValid(v: string | string[] | undefined): boolean {
  return v === undefined || (typeof v === 'string' && isValidHostValue(v.trim()));
}

/**
 * Answers 400 (gRPC INTERNAL, as a gRPC client maps HTTP 400) to a stream the proxy will not read two ways: a
 * fragment in `:path` (RFC 9113 section 8.3.1 leaves no place for one, and an app that parses it would route on a
 * path the policy never saw), a method with a lower-case letter (http1-head.ts hasLowerCase), or an `:authority`
 * or `host` outside the Host grammar (host-value.ts). And a CONNECT (RFC 9113 section 8.5: no `:path`, a tunnel):
 * there are no tunnels on these listeners, as on every HTTP/1.1 one (http1-head.ts); forwarded, it was authorized
 * as a path it does not have and then hung (node:http gives a CONNECT's answer to a 'connect' listener, the edge's
 * bridge to HTTP/1.1 had none: 60 s to a 504, audit 57a F2) or failed (node:http2 sends no CONNECT with a `:path`).
 * True when it did.
 */
export function refuseAmbiguous(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, method: string, path: string, grpc: boolean): boolean {
  if (method !== 'CONNECT' && !path.includes('#') && !hasLowerCase(method) && authorityValid(headers[':authority']) && authorityValid(headers.host)) return false;
  respondLocal(stream, grpc, 400, 'bad_request', GRPC_INTERNAL);
  return true;
}
