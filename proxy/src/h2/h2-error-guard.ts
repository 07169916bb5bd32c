// No event of the proxy's HTTP/2 servers may become an uncaught exception, which exits the whole process (there is
// no 'uncaughtException' handler, by design). node:http2 emits 'error' on a stream when its session dies (a TCP
// reset, a peer's connection error such as a WINDOW_UPDATE overflow) or when the peer resets it with any code but
// NO_ERROR or CANCEL, and on a session torn down with an error. So every server session and stream gets an 'error'
// listener as node:http2 hands it over, before any handler of ours runs, whatever path the stream then takes
// (forwarded, answered locally, refused before routing, reset): a stream answered locally had none, and a client
// holding that answer back with a zero flow-control window, then resetting, killed the process (audit 7b). What
// ended a stream is still read where it was always counted, on 'close' (rstCode, headersSent).
import type * as http2 from 'node:http2';
import { Http2HandlePins } from '../../../shared-io/http2-handle-pins.js';
import type { Timers } from '../../../shared-io/timers.js';

/** The 'error' listener: one shared function, so guarding a stream allocates nothing. */
export function ignoreH2Error(): void {}

/**
 * Guards every session of `server` and every stream of those sessions from the moment node:http2 announces them,
 * and holds each session's native handle until its socket has closed (http2-handle-pins.ts: a GC could otherwise free
 * a destroyed session under a write its socket was still completing, a SIGSEGV).
 */
export function guardH2Server(server: http2.Http2Server | http2.Http2SecureServer, timers: Pick<Timers, 'setTimeout'>): void {
  const pins = new Http2HandlePins(timers);
  // Prepended: the listeners' own 'session' and 'stream' handlers run after these.
  server.prependListener('session', (session: http2.ServerHttp2Session) => {
    pins.pin(session);
    guardSession(session);
  });
}

function guardSession(session: http2.ServerHttp2Session): void {
  session.on('error', ignoreH2Error);
  session.prependListener('stream', guardStream);
}

function guardStream(stream: http2.ServerHttp2Stream): void {
  stream.on('error', ignoreH2Error);
  stream.on('aborted', destroyAborted);
}

/**
 * The peer closed the stream while our side was still open. With RST_STREAM NO_ERROR, node:http2 waits for the
 * request body to be read to its end before destroying the stream, which never comes while the body is paused (an
 * upstream not reading it): the stream would keep its buffer, its upstream request and its exchange open, answering
 * it would throw, and it would never report 'close'. Destroyed a tick later, once a RST_STREAM of our own (when we
 * closed it) was queued.
 */
function destroyAborted(this: http2.ServerHttp2Stream): void {
  process.nextTick(destroyStream, this);
}

function destroyStream(stream: http2.ServerHttp2Stream): void {
  if (!stream.destroyed) stream.destroy();
}
