// How a client's HTTP/2 stream is ended when the proxy cuts its session on purpose (the drain deadline, a ban of its
// peer, a session deadline): by the forwarder's own hook when it has one (a gRPC call ends with UNAVAILABLE trailers,
// the status a client's retry policy acts on: RST_STREAM CANCEL reads as CANCELLED, its own cancel, which no policy
// retries, audit 62b F1), else reset with CANCEL alone (stream-cancel.ts).
import type * as http2 from 'node:http2';
import { cancelStream } from './stream-cancel.js';

/** Set on a stream by its forwarder (onStreamCut): ends it, true when frames are still to go out (trailers). */
const HOOK = Symbol('tessera.streamCut');

type Hooked = http2.ServerHttp2Stream & { [HOOK]?: () => boolean };

/** `end` ends `stream` at a cut in its protocol's way; true: it ends gracefully, its session must let it flush. */
export function onStreamCut(stream: http2.ServerHttp2Stream, end: () => boolean): void {
  (stream as Hooked)[HOOK] = end;
}

/** Ends `stream` at a cut: its forwarder's way, else RST_STREAM CANCEL. True: frames are still to go out. */
export function cutStream(stream: http2.ServerHttp2Stream): boolean {
  if ((stream as Hooked)[HOOK]?.() === true) return true;
  cancelStream(stream);
  return false;
}
