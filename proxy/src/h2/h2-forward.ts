// Forwards one HTTP/2 stream (HTTP/2 or gRPC) to an upstream session: headers with connection-specific ones
// removed, bodies both ways with backpressure (pipe), response trailers (grpc-status) relayed, cancellation
// (RST_STREAM) propagated in both directions, a request timeout. Request trailers are never forwarded (only the
// body is piped): like HTTP/1.1 trailers they would reach the app past the header checks.
import * as http2 from 'node:http2';
import type { H2Upstream } from './h2-upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;
const GRPC_INTERNAL = 13;

/** Connection-specific headers (RFC 9113 section 8.2.2) and our own identity header, never forwarded. */
const DROP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);
const KEEP_PSEUDO: ReadonlySet<string> = new Set([':method', ':path', ':authority']);

export interface ForwardResult {
  /** HTTP status sent to the client (0 when the stream was cut before a response). */
  readonly status: number;
  /** grpc-status from the trailers (or trailers-only headers), when present. */
  readonly grpcStatus?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
}

export function requestHeaders(incoming: http2.IncomingHttpHeaders, strip: ReadonlySet<string>, add: Readonly<Record<string, string>>): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined) continue;
    if (k.startsWith(':') ? !KEEP_PSEUDO.has(k) : DROP.has(k) || strip.has(k)) continue;
    if (k === 'te' && v !== 'trailers') continue;
    out[k] = v;
  }
  return Object.assign(out, add);
}

function responseHeaders(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || (k.startsWith(':') && k !== ':status') || DROP.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** Answers locally: gRPC errors as trailers-only responses, HTTP/2 with a status and a short code. */
export function respondLocal(stream: http2.ServerHttp2Stream, grpc: boolean, status: number, code: string, grpcStatus: number): void {
  if (stream.destroyed || stream.headersSent) return;
  if (grpc) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': code }, { endStream: true });
  } else {
    stream.respond({ ':status': status, 'content-type': 'text/plain', 'x-tessera-error': code });
    stream.end(`${code}\n`);
  }
}

/**
 * Refuses a `:path` with a fragment (400 bad_request, gRPC INTERNAL as a gRPC client maps HTTP 400): RFC 9112
 * section 3.2 and RFC 9113 section 8.3.1 leave no place for one, and an app that parses it would route on a
 * path the policy never saw. Returns true when the stream was answered.
 */
export function refuseFragment(stream: http2.ServerHttp2Stream, path: string, grpc: boolean): boolean {
  if (!path.includes('#')) return false;
  respondLocal(stream, grpc, 400, 'bad_request', GRPC_INTERNAL);
  return true;
}

/**
 * Forwards `stream` with `headers`. HTTP/2: when no response headers came `timeoutMs` after the request began (its
 * body included), the client gets 504 request_timeout and the upstream stream is cancelled, so whatever the app
 * still sends on it is discarded by the HTTP/2 layer; a response that has begun is not cut. gRPC gets no proxy
 * timer: its deadline is the client's (grpc-timeout), enforced by the client cancelling, which is propagated; a
 * server stream may legitimately wait long before its first message (and its response headers).
 */
export function forwardStream(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders, upstream: H2Upstream, grpc: boolean, timeoutMs: number, done: (r: ForwardResult) => void): void {
  let finished = false;
  let timedOut = false;
  let status = 0;
  let grpcStatus: string | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  let req: http2.ClientHttp2Stream | undefined;
  const finish = (error?: string) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done({ status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), bytesIn, bytesOut, ...(error ? { error } : {}) });
  };
  const timer = grpc
    ? undefined
    : setTimeout(() => {
        timedOut = true;
        status = 504;
        respondLocal(stream, false, 504, 'request_timeout', 0);
        if (req && !req.closed) req.close(NGHTTP2_CANCEL);
        finish('request_timeout');
      }, timeoutMs);
  timer?.unref();
  upstream.session((err, session) => {
    if (timedOut) return;
    if (err || !session) {
      status = grpc ? 200 : 502;
      grpcStatus = grpc ? '14' : undefined;
      respondLocal(stream, grpc, 502, 'upstream_unavailable', 14);
      return finish('upstream_unavailable');
    }
    if (stream.destroyed) return finish('downstream_reset');
    try {
      req = session.request(headers, { endStream: stream.readableEnded });
      upstream.track(session, req);
    } catch {
      status = grpc ? 200 : 502;
      respondLocal(stream, grpc, 502, 'upstream_unavailable', 14);
      return finish('upstream_unavailable');
    }
    const up = req;
    let trailers: http2.OutgoingHttpHeaders | undefined;
    up.on('response', (h, flags) => {
      if (timedOut) return;
      clearTimeout(timer);
      status = Number(h[':status']) || 0;
      const out = responseHeaders(h);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (stream.destroyed) return;
      if (flags & NGHTTP2_FLAG_END_STREAM) {
        stream.respond(out, { endStream: true });
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      up.pipe(stream);
    });
    up.on('data', (d: Buffer) => {
      bytesOut += d.length;
    });
    up.on('trailers', (t) => {
      trailers = responseHeaders(t);
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
    if (!stream.readableEnded) {
      stream.on('data', (d: Buffer) => {
        bytesIn += d.length;
      });
      stream.pipe(up);
    }
    up.on('close', () => {
      if (timedOut) return; // answered (or cut) by the timeout already
      if (!stream.headersSent && !stream.destroyed) {
        status = grpc ? 200 : 502;
        respondLocal(stream, grpc, 502, 'upstream_reset', 14);
        grpcStatus ??= grpc ? '14' : undefined;
        return finish('upstream_reset');
      }
      if (up.rstCode && up.rstCode !== 0 && !stream.destroyed) stream.close(up.rstCode);
    });
    stream.on('close', () => {
      if (!up.closed) up.close(NGHTTP2_CANCEL);
      finish(stream.rstCode && stream.rstCode !== 0 && status === 0 ? 'downstream_reset' : undefined);
    });
    up.on('error', () => undefined); // reported through 'close'
  });
  stream.on('error', () => undefined);
}
