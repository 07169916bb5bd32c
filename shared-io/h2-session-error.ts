// What an error of an HTTP/2 server session says about its client, for the counters of every HTTP/2 server (the
// proxies' listeners, the control plane's gRPC port, the Workload API socket): nghttp2 closes a session itself on a
// flood (its own checks, CONTINUATION without end, Node's bound on refused frames) or a connection-level protocol
// error. Errors of the socket (a reset) and the server's own cuts are neither.

export type H2SessionFault = 'http2_flood' | 'http2_protocol_error';

export function sessionErrorReason(err: unknown): H2SessionFault | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  // Node's bound (maxSessionInvalidFrames): frames it had to refuse (malformed headers, streams over the limit, ...).
  if (code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return 'http2_flood';
  if (code !== 'ERR_HTTP2_ERROR') return undefined;
  return /flood|too many continuation/i.test((err as Error).message) ? 'http2_flood' : 'http2_protocol_error';
}
