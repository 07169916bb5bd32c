// Forwards one HTTP/2 stream (HTTP/2 or gRPC) to an upstream session: headers with connection-specific ones
// removed, bodies both ways with backpressure (pipe), response trailers (grpc-status) relayed, cancellation
// (RST_STREAM) propagated in both directions.
import * as http2 from 'node:http2';
import type { H2Upstream } from './h2-upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

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

export function forwardStream(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders, upstream: H2Upstream, grpc: boolean, done: (r: ForwardResult) => void): void {
  let finished = false;
  let status = 0;
  let grpcStatus: string | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  const finish = (error?: string) => {
    if (finished) return;
    finished = true;
    done({ status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), bytesIn, bytesOut, ...(error ? { error } : {}) });
  };
  upstream.session((err, session) => {
    if (err || !session) {
      status = grpc ? 200 : 502;
      grpcStatus = grpc ? '14' : undefined;
      respondLocal(stream, grpc, 502, 'upstream_unavailable', 14);
      return finish('upstream_unavailable');
    }
    if (stream.destroyed) return finish('downstream_reset');
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request(headers, { endStream: stream.readableEnded });
    } catch {
      status = grpc ? 200 : 502;
      respondLocal(stream, grpc, 502, 'upstream_unavailable', 14);
      return finish('upstream_unavailable');
    }
    let trailers: http2.OutgoingHttpHeaders | undefined;
    req.on('response', (h, flags) => {
      status = Number(h[':status']) || 0;
      const out = responseHeaders(h);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (stream.destroyed) return;
      if (flags & NGHTTP2_FLAG_END_STREAM) {
        stream.respond(out, { endStream: true });
        return;
      }
      stream.respond(out, { waitForTrailers: true });
      req.pipe(stream);
    });
    req.on('data', (d: Buffer) => {
      bytesOut += d.length;
    });
    req.on('trailers', (t) => {
      trailers = responseHeaders(t);
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
    if (!stream.readableEnded) {
      stream.on('data', (d: Buffer) => {
        bytesIn += d.length;
      });
      stream.pipe(req);
    }
    req.on('close', () => {
      if (!stream.headersSent && !stream.destroyed) {
        status = grpc ? 200 : 502;
        respondLocal(stream, grpc, 502, 'upstream_reset', 14);
        grpcStatus ??= grpc ? '14' : undefined;
        return finish('upstream_reset');
      }
      if (req.rstCode && req.rstCode !== 0 && !stream.destroyed) stream.close(req.rstCode);
    });
    stream.on('close', () => {
      if (!req.closed) req.close(NGHTTP2_CANCEL);
      finish(stream.rstCode && stream.rstCode !== 0 && status === 0 ? 'downstream_reset' : undefined);
    });
    req.on('error', () => undefined); // reported through 'close'
  });
  stream.on('error', () => undefined);
}
