// Resets an HTTP/2 stream with RST_STREAM CANCEL and nothing before it. node:http2's close(CANCEL) first ends the
// writable side: a server stream whose response waits for no trailers then sends DATA END_STREAM ahead of the reset,
// which its client reads as a whole response; and a destroy() without an error resets with NO_ERROR, read the same way
// (audit 54c F1). A destroy with an AbortError is the one path that sends CANCEL alone, whatever the stream's state.
import type * as http2 from 'node:http2';
import { addAbortSignal } from 'node:stream';

/** Resets `stream` with CANCEL now, unless it is closed already. */
export function cancelStream(stream: http2.Http2Stream): void {
  if (stream.closed || stream.destroyed) return;
  addAbortSignal(AbortSignal.abort(), stream);
}
