// What the sidecar HTTP/2 listeners (inbound mTLS, outbound h2c) share around node:http2: each session tracked
// with its deadlines (h2-server-limits.ts) and cut with the listener, and the head of each stream read once:
// gRPC or plain HTTP/2, method, path, a request id and the start time, a fragment in the path refused.
import type * as http2 from 'node:http2';
import { guardH2Server } from '../h2/h2-error-guard.js';
import { refuseAmbiguous } from '../h2/h2-forward.js';
import { isGrpcContentType } from '../h2/h2-heads.js';
import { h2ServerOptions, refusedPastGoaway, watchH2Session } from './h2-server-limits.js';
import { keepAccepting } from './keep-accepting.js';
import type { ListenerDeps } from './listener-deps.js';
import type { SessionSet } from './session-set.js';

/** nghttp2's memory bound per session (MiB), above Node's 10 MiB default: a proxy session carries many streams. */
export const SIDECAR_H2_SESSION_MEMORY_MB = 64;

/** Server options of a sidecar h2 listener (SETTINGS and bounds from the limits). */
export function sidecarH2Options(limits: ListenerDeps['limits']): http2.ServerOptions {
  return h2ServerOptions(limits, SIDECAR_H2_SESSION_MEMORY_MB);
}

/**
 * Tracks every session of `server` in `sessions` with its deadlines (cuts counted as rejected for `direction`)
 * after `admit` accepted it (false: it was closed). No Node session timeout: it counts frames, so it would cut a
 * session whose streams are quiet but open; open streams have their own deadlines (h2-forward.ts).
 */
export function trackH2Sessions(server: http2.Http2Server | http2.Http2SecureServer, sessions: SessionSet, d: ListenerDeps, direction: 'inbound' | 'outbound', admit: (s: http2.ServerHttp2Session) => boolean, listener: string): void {
  // Every session and stream an 'error' listener before anything else sees them: a peer's reset or protocol error
  // never exits the process, whatever the stream's path (h2-error-guard.ts).
  guardH2Server(server, d.timers);
  keepAccepting(server, d.nowMs, (err, failures) => d.log.warn({ listener, err, failures }, `${direction} accept failed`));
  server.on('session', (session: http2.ServerHttp2Session) => {
    if (!admit(session)) return;
    // Past its premature-reset budget the outbound listener's app is cut; an inbound peer, mostly a proxy whose
    // session carries its own clients' cancellations, is drained (h2-reset-budget.ts).
    watchH2Session(sessions, session, d.limits, d.nowMs, (code) => d.metrics.rejected(direction, code), direction === 'outbound' ? 'cut' : 'drain');
  });
}

export interface H2StreamHead {
  readonly grpc: boolean;
  readonly protocol: 'grpc' | 'http2';
  readonly startMs: number;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
}

/** The head of a new stream; null when it was refused (past its session's GOAWAY: REFUSED_STREAM; a fragment in `:path`, a lower-case method, an `:authority` or `host` outside the Host grammar, a CONNECT: 400, counted as bad_request). */
export function readH2Stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, configured: string, d: ListenerDeps, direction: 'inbound' | 'outbound'): H2StreamHead | null {
  if (refusedPastGoaway(stream)) return null;
  const grpc = configured === 'grpc' || isGrpcContentType(headers['content-type']);
  const startMs = d.nowMs();
  const requestId = d.requestId();
  const method = String(headers[':method'] ?? '');
  const path = String(headers[':path'] ?? '');
  if (refuseAmbiguous(stream, headers, method, path, grpc)) {
    d.metrics.rejected(direction, 'bad_request');
    return null;
  }
  return { grpc, protocol: grpc ? 'grpc' : 'http2', startMs, requestId, method, path };
}
