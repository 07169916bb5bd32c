// A client's HTTP/2 request body relayed to an upstream (an h2 stream, or an HTTP/1.1 request) whose end goes on only
// when the client really ended it, and an upstream h2 stream cancelled without ending it first. The upstream must
// never take a request the proxy refused for a whole one (audit 27a F2): node:http2 ends the writable side of a stream
// it closes (close(CANCEL) sent DATA END_STREAM, then RST_STREAM CANCEL), and it ends the readable side of a stream
// the client reset with NO_ERROR (its 'end', which a plain pipe relayed as the request's end). A client stream that
// errors (a content-length its DATA did not meet, a pseudo-header in its trailers: nghttp2 resets it) never ends.
import type * as http2 from 'node:http2';
import { constants } from 'node:http2';
import type { Writable } from 'node:stream';
import { cancelStream } from './stream-cancel.js';

/**
 * An answer went out whole while the client still sends its request (an app's 401 or 413 before the upload ended):
 * RST_STREAM NO_ERROR tells the client to stop (RFC 9113 section 8.1), as Envoy does, and what it still sends is read
 * and dropped meanwhile. Not after trailers with fields (`trailerFields` > 0): node:http2 can put the reset on the
 * wire ahead of them and the client loses them (a gRPC call answered while its client streamed failed without a
 * status, audit 58f F1); such a stream is left to its client, which stops once it reads them, or to the idle timeout.
 */
export function stopUnendedRequest(stream: http2.ServerHttp2Stream, trailerFields = 0): void {
  if (stream.readableEnded || stream.closed || stream.destroyed) return;
  stream.resume();
  if (trailerFields === 0) resetOnceEnded(stream, 0);
}

/** Turns stopUnendedRequest waits at most for the answer's END_STREAM to be sent before it resets anyway. */
const MAX_END_WAIT_TURNS = 16;

/**
 * RST_STREAM NO_ERROR once this side's END_STREAM is on the wire (nghttp2's `localClose`): closed at the stream's
 * 'finish', the reset went out ahead of the last DATA, which nghttp2 then dropped, and the client read a complete
 * answer as a cut one (audit 62l F2). A few turns at most: the frame goes out with the session's next write.
 */
function resetOnceEnded(stream: http2.ServerHttp2Stream, turns: number): void {
  if (stream.closed || stream.destroyed || stream.readableEnded) return;
  if (stream.state.localClose !== 1 && turns < MAX_END_WAIT_TURNS) return void setImmediate(() => resetOnceEnded(stream, turns + 1));
  stream.close(constants.NGHTTP2_NO_ERROR);
}

/** True once `stream`'s request body came to its END_STREAM, not to a reset. */
export function endedCleanly(stream: http2.ServerHttp2Stream): boolean {
  return stream.readableEnded && !stream.aborted;
}

/**
 * Pipes `stream`'s body into `to` with backpressure and ends `to` only on a clean end (endedCleanly): a reset leaves
 * it open for the caller to cancel (cancelUpstream) or destroy. Returns the undoing of it (a refused stream's body
 * is sent again on another).
 */
export function relayRequestBody(stream: http2.ServerHttp2Stream, to: Writable): () => void {
  const onEnd = () => {
    if (!stream.aborted && !to.destroyed && !to.writableEnded) to.end();
  };
  stream.pipe(to, { end: false });
  stream.once('end', onEnd);
  return () => {
    stream.unpipe(to);
    stream.off('end', onEnd);
  };
}

/**
 * Resets `req` with CANCEL. One whose request is not ended is reset by cancelStream (an AbortError, which node:http2
 * resets with CANCEL without the END_STREAM close() would send first); an ended one is closed as before. The destroy
 * waits for the next turn: this may run inside the upstream session's own frame handling (a head refused in the same
 * read as the app's GOAWAY), where Node 24.20 frees a stream destroyed from a client session's GOAWAY handling twice,
 * a microtask included (h2-forward.ts). Meanwhile nothing ends it: relayRequestBody ends it only on the client's
 * clean end, which makes it a whole request anyway.
 */
export function cancelUpstream(req: http2.ClientHttp2Stream): void {
  if (req.closed || req.destroyed) return;
  if (req.writableEnded) return void req.close(constants.NGHTTP2_CANCEL);
  setImmediate(() => cancelStream(req));
}
