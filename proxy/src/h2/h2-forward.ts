// Forwards one HTTP/2 stream (HTTP/2 or gRPC) to an upstream session: headers with connection-specific ones
// removed (http1/connection-fields.ts), bodies both ways with backpressure (pipe), response trailers (grpc-status)
// relayed, cancellation (RST_STREAM) propagated in both directions, 1xx informational heads relayed, and its
// deadlines: response head, stream idle, total (their timers: stream-deadlines.ts). Request trailers are never
// forwarded (only the body is piped): like HTTP/1.1 trailers they would reach the app past the header checks.
// An upstream reset (or session gone) after the response head is never a clean end for the client: RST_STREAM,
// or for a gRPC call UNAVAILABLE trailers (upstreamCut), as for an answer ended without its grpc-status (audit 54c).
// An upstream stream is only ever reset with CANCEL (cancelUpstream, request-end.ts: never after an END_STREAM the
// client did not send; the request body's end is relayed only when the client really ended it), and no upstream
// session is closed from a stream's callbacks: Node 24.20's nghttp2 frees streams twice when a client session sends
// (any other reset, a close or destroy) from inside its own GOAWAY handling, an abort a hostile app could then set
// off (Node 24.21 defers those sends); test/integration/h2-upstream-goaway-refused-head.test.ts is the guard (an
// app's GOAWAY and a refused head in one read).
// A stream the upstream refused with ENHANCE_YOUR_CALM retires its session (a Node app refuses every stream of a
// session whose memory a slow reader's unread answers fill) and an idempotent request is sent again on another.
// To a balanced service, a request that may be sent twice (StreamSettings.replayable) whose attempt was answered
// with a 5xx head or a head that cannot be relayed (discarded, its stream cancelled), or reset before its head, goes
// to another endpoint, as over HTTP/1.1: the route (routing/exchange-route.ts) decides and counts, with the body
// the refusals already hold (replay-buffer.ts).
import * as http2 from 'node:http2';
import { GRPC_STATUS } from '../../../common/grpc-status-codes.js';
import { cutStatus, refusalGrpcStatus, unflushed } from '../../../common/refusal-reasons.js';
import type { Timers } from '../../../shared-io/timers.js';
import { type ExchangeLimits, withExchangeLimits } from '../config/exchange-limits.js';
import type { ProxyLimits } from '../config/proxy-config.js';
import type { ExchangeFlag } from '../http1/http1-exchange.js';
import { MAX_INTERIM_BYTES, MAX_INTERIM_HEADS } from '../http1/http1-head.js';
import type { DrainCuts } from '../listeners/drain-cut.js';
import { connectFailureReason, type ExchangeRoute, type RetryReason } from '../routing/exchange-route.js';
import { ignoreH2Error } from './h2-error-guard.js';
import { canRespond, respondLocal, responseHeaders } from './h2-heads.js';
import { H2Upstream } from './h2-upstream.js';
import { ReplayBuffer } from './replay-buffer.js';
import { cancelUpstream, endedCleanly, relayRequestBody, stopUnendedRequest } from './request-end.js';
import { onStreamCut } from './stream-cut.js';
import { type DeadlineFlag, StreamDeadlines } from './stream-deadlines.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
const GRPC_UNAVAILABLE = GRPC_STATUS.UNAVAILABLE;
/** grpc-status a client reports for a stream reset with CANCEL. */
const GRPC_CANCELLED = '1';
/** The access log's status when the client left before any response was sent (nginx's 499). */
const CLIENT_CLOSED_REQUEST = 499;
/**
 * A stream the upstream refused was not processed (RFC 9113 §8.7): REFUSED_STREAM, which nghttp2 also reports for
 * the streams above a GOAWAY's last stream id (nginx ends every HTTP/2 connection so after 1,000 requests by
 * default). Such a request is sent again on a new stream, up to twice (Istio's default retries refused streams),
 * if its body so far is held: up to StreamSettings.replayBytes, until the response head.
 */
const REFUSED_RETRIES = 2;
/**
 * Sent again after ENHANCE_YOUR_CALM before any answer, which a Node app's server sends for every new stream while
 * its session's memory is full (another caller's unread answers), before its handler sees the stream: all the
 * idempotent methods of RFC 9110 section 9.2.2, PUT and DELETE too (sending one twice changes nothing more), unlike
 * a retry after an endpoint answered (exchange-route.ts retryableMethod). An RFC-conforming peer might have
 * processed the stream, so no other method is repeated.
 */
const REPEAT_AFTER_CALM: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

// Where the listeners and the edge have always taken them from.
export { canRespond, refuseAmbiguous, requestHeaders, respondLocal } from './h2-heads.js';

export interface ForwardResult {
  /** HTTP status sent to the client (499 when the client left before a response). */
  readonly status: number;
  /** grpc-status from the trailers (or trailers-only headers), when present. */
  readonly grpcStatus?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
  /** What ended the exchange early, first cause only (the access log's `responseFlags`). */
  readonly responseFlags?: ExchangeFlag;
  /** The client's request body had ended cleanly (a stream_idle_timeout before that is the client's stall). */
  readonly requestComplete: boolean;
  /** At a deadline cut, request bytes waited to go upstream (unflushed): the upstream's stall, not the client's. */
  readonly heldUpstream?: boolean;
}

/**
 * The deadlines of one forwarded stream (Envoy's model): `requestMs` until the response head (HTTP/2 only: a gRPC
 * call follows its client's grpc-timeout, whose cancel is propagated); `idleMs` with no HEADERS or DATA in either
 * direction (0: none); `totalMs` for the whole exchange (a listener's `timeout`; absent: none). A stream that keeps
 * moving is cut by neither of the first two. And `replayBytes`, the request body held to send a refused stream again.
 */
export interface StreamSettings {
  readonly requestMs: number;
  readonly idleMs: number;
  readonly totalMs?: number | undefined;
  readonly nowMs: () => number;
  /** The deadlines' timers (the listener's: one object for all its streams). */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** Counts a cut by a deadline (tessera_requests_rejected_total{reason}, as HTTP/1.1 exchanges are counted). */
  readonly onCut?: ((reason: DeadlineFlag) => void) | undefined;
  /** routing.retry.bufferBytes: a refused stream whose request body went past this is answered, not sent again. */
  readonly replayBytes: number;
  /** Response fields (headers and trailers) the upstream may not send on: an app's, where the proxy owns them. */
  readonly dropResponse?: ReadonlySet<string> | undefined;
  /** The connections the drain deadline cut (its listener's SessionSet.drainCuts): is this stream's session one? */
  readonly drainCuts?: DrainCuts | undefined;
  /**
   * With a balanced route: the request may be sent twice (retryableMethod, never a gRPC call), so an attempt answered
   * with a 5xx head or one that cannot be relayed, or reset before its head, goes to another endpoint when its whole
   * body is held (ExchangeRoute.retry).
   */
  readonly replayable?: boolean | undefined;
  /** limits.minRequestBodyRate and its grace: a body that goes on as HTTP/1.1 (the edge's bridge) is paced by them. */
  readonly bodyRate?: { readonly bytesPerSecond: number; readonly graceMs: number } | undefined;
}

/** A listener's stream settings: the proxy limits, the retry buffer and the listener's own `timeout`. */
export function streamSettings(
  d: { readonly limits: Pick<ProxyLimits, 'requestTimeoutMs' | 'streamIdleTimeoutMs' | 'minRequestBodyRate' | 'headersTimeoutMs'>; readonly retryBufferBytes: number; readonly nowMs: () => number; readonly timers: StreamSettings['timers'] },
  listener: { readonly timeoutMs?: number | undefined } & ExchangeLimits,
  onCut?: (reason: DeadlineFlag) => void,
  drainCuts?: DrainCuts,
): StreamSettings {
  const limits = withExchangeLimits(d.limits, listener);
  const bodyRate = { bytesPerSecond: limits.minRequestBodyRate, graceMs: d.limits.headersTimeoutMs };
  return { requestMs: limits.requestTimeoutMs, idleMs: d.limits.streamIdleTimeoutMs, totalMs: listener.timeoutMs, nowMs: d.nowMs, timers: d.timers, onCut, replayBytes: d.retryBufferBytes, drainCuts, bodyRate };
}

/**
 * Forwards `stream` with `headers`. Deadlines (`t`): before the
 * response head, a deadline is answered locally (HTTP/2: 504 with its reason; gRPC: trailers-only with the
 * reason's status) and the upstream stream cancelled, so whatever the app still sends on it is discarded by the
 * HTTP/2 layer; after the head, the stream is reset with CANCEL both ways (a gRPC client sees CANCELLED). The
 * result keeps the status really sent and says what ended the exchange first (`responseFlags`).
 */
export function forwardStream(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders, to: H2Upstream | ExchangeRoute<H2Upstream>, grpc: boolean, t: StreamSettings, done: (r: ForwardResult) => void): void {
  // `stream` has its 'error' listener already: the server it came from is guarded (h2-error-guard.ts).
  // A balanced service: a session that cannot be had on one endpoint is asked of another (nothing was sent yet).
  const route = to instanceof H2Upstream ? null : to;
  let finished = false;
  /** The proxy ended the exchange itself: a deadline, or an upstream head it would not relay and no retry followed. */
  let cut = false;
  let flag: ExchangeFlag | undefined;
  let status = 0;
  let grpcStatus: string | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  let heldUpstream = false;
  /** What cut the exchange after its head went out (upstreamCut): logged with the flag when the client's stream closes. */
  let lateError: string | undefined;
  let req: http2.ClientHttp2Stream | undefined;
  const finish = (error?: string) => {
    if (finished) return;
    finished = true;
    deadlines.clear();
    done({ status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), bytesIn, bytesOut, ...(error ? { error } : {}), ...(flag ? { responseFlags: flag } : {}), requestComplete: endedCleanly(stream), heldUpstream });
  };
  // Captured now: a destroyed stream no longer names its session.
  const downSession = stream.session;
  /**
   * The client reset or left first, or the drain deadline cut its session (drain_timeout): nginx's 499 when nothing
   * was sent yet; CANCELLED for a gRPC call.
   */
  const clientLeft = () => {
    const drained = t.drainCuts?.has(downSession) ?? false;
    flag = drained ? 'drain_timeout' : 'downstream_closed';
    if (status === 0) status = CLIENT_CLOSED_REQUEST;
    if (grpc) grpcStatus ??= GRPC_CANCELLED;
    finish(status === CLIENT_CLOSED_REQUEST && !drained ? 'downstream_reset' : undefined);
  };
  /** A deadline passed: answered locally before the head, both streams reset after it. */
  const cutBy = (reason: DeadlineFlag) => {
    if (finished) return;
    cut = true;
    flag = reason;
    // The upstream stream still holds body bytes (it stopped reading; the pipe paused the client): its stall —
    // unless answers wait for the client (a full window, an unread stream): then the client held everything back.
    heldUpstream = unflushed(req) && !unflushed(stream);
    t.onCut?.(reason);
    if (canRespond(stream)) {
      // 408 for a client that stalled its own body, as HTTP/1.1 answers it (cutStatus); 504 if the upstream held it.
      status = grpc ? 200 : cutStatus(reason, endedCleanly(stream), heldUpstream);
      if (grpc) grpcStatus = String(refusalGrpcStatus(reason));
      respondLocal(stream, grpc, status, reason, refusalGrpcStatus(reason));
    } else {
      if (grpc) grpcStatus ??= GRPC_CANCELLED; // what the client's library reports for RST_STREAM CANCEL
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    }
    if (req) cancelUpstream(req);
    finish(reason);
  };
  // The head deadline runs from the request being complete (its body included): an upload that moves is not cut.
  const deadlines = new StreamDeadlines(t, cutBy, !grpc && stream.readableEnded && !stream.headersSent);
  if (!grpc && !stream.readableEnded) {
    stream.once('end', () => {
      if (!finished && !stream.headersSent) deadlines.armHead();
    });
  }
  // The request body as sent so far, while a refused stream could still be sent again; let go once it outgrew
  // t.replayBytes or the response head arrived.
  const replay = new ReplayBuffer(t.replayBytes);
  let refusals = 0;
  /** Not the exchange's first upstream stream (a refused one, or a retry on another endpoint): the held body goes again. */
  let again = false;
  let interim = 0;
  let interimBytes = 0;
  let counting = false;
  let trailers: http2.OutgoingHttpHeaders | undefined;
  let unrelay = () => {};
  /** The answer was sent with waitForTrailers: it is whole only once they are sent. */
  let trailersAwaited = false;
  stream.on('wantTrailers', () => {
    const fields = trailers ?? {};
    try {
      stream.sendTrailers(fields);
    } catch {
      // The stream closed under us, or node:http2 refused a trailer: reset, never ended as if complete.
      flag ??= 'upstream_closed';
      if (!stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (!cut && flag === undefined) stopUnendedRequest(stream, Object.keys(fields).length);
  });
  // Its session cut on purpose (the drain deadline, a ban, a session deadline): a gRPC call ends UNAVAILABLE, as Envoy's
  // does, not with the CANCEL its client reads as CANCELLED, which no retry policy retries (audit 62b F1).
  if (grpc) {
    onStreamCut(stream, () => {
      if (finished || cut || stream.destroyed || stream.closed || (stream.headersSent && stream.writableEnded)) return false;
      cut = true;
      const drained = t.drainCuts?.has(downSession) ?? false;
      flag = drained ? 'drain_timeout' : 'downstream_closed';
      grpcStatus = String(GRPC_UNAVAILABLE);
      const fields = { 'grpc-status': grpcStatus, 'grpc-message': drained ? 'proxy shutting down' : 'connection cut' };
      if (canRespond(stream)) {
        status = 200;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...fields }, { endStream: true }); // trailers-only
      } else {
        req?.unpipe(stream);
        trailers = fields;
        stream.end();
      }
      if (req) cancelUpstream(req);
      finish(drained ? undefined : 'downstream_reset');
      return true;
    });
  }
  // Answered whole while the client still sends: told to stop, not left to the idle timeout's CANCEL.
  stream.once('finish', () => {
    if (!trailersAwaited && !cut && flag === undefined) stopUnendedRequest(stream);
  });
  stream.on('close', () => {
    if (req) cancelUpstream(req);
    if (cut) return;
    if (flag) return finish(lateError);
    // Reset by the client (RST_STREAM of any code, NO_ERROR included), or closed before our response was whole;
    // or its session cut at the drain deadline.
    if ((stream.rstCode ?? 0) !== 0 || stream.aborted || t.drainCuts?.has(downSession)) return clientLeft();
    finish();
  });
  /** Nothing was answered yet and the upstream cannot answer: 502 `reason` (gRPC: UNAVAILABLE), the exchange ends. */
  const answerUnavailable = (reason: 'upstream_unavailable' | 'upstream_reset') => {
    status = grpc ? 200 : 502;
    if (grpc) grpcStatus = String(GRPC_UNAVAILABLE);
    respondLocal(stream, grpc, 502, reason, GRPC_UNAVAILABLE);
    finish(reason);
  };
  const upstreamOf = () => (route ? route.resource : (to as H2Upstream));
  const open = (upstream: H2Upstream, fresh = false) => upstream.session((err, session) => {
    if (finished) return;
    if (err || !session) {
      if (route?.retry(connectFailureReason(err), false, deadlines.totalDeadlineMs)) return open(route.resource);
      return answerUnavailable('upstream_unavailable');
    }
    // A client that reset its stream (NO_ERROR included: node:http2 ends its body then) left.
    if (stream.destroyed || stream.aborted) return clientLeft();
    if (again && !replay.held) {
      // The body went on flowing while a session was had, past what is held.
      return answerUnavailable('upstream_reset');
    }
    // A request whose HEADERS carried END_STREAM goes on with END_STREAM on its HEADERS too, before node:http2 has
    // read its (empty) body to 'end': no empty DATA frame after it, and no pipe (15-20 % of a GET's CPU, h2load).
    const noBody = stream.endAfterHeaders && !stream.readableEnded;
    const bodyAhead = !(stream.readableEnded || noBody) || (again && replay.bytes > 0);
    try {
      req = session.request(headers, { endStream: !bodyAhead });
      req.on('error', ignoreH2Error); // reported through 'close'
      upstream.track(session, req);
      route?.dispatched();
    } catch {
      return answerUnavailable('upstream_unavailable');
    }
    const up = req;
    up.on('response', (h, flags) => {
      if (cut || req !== up) return;
      route?.responded();
      deadlines.moved();
      // A 5xx head of a balanced attempt: nothing of it reaches the client when another endpoint is tried.
      if (Number(h[':status']) >= 500 && retried(up, 'status_5xx')) return;
      if (stream.destroyed || stream.closed) return; // the client left: its 'close' reports it (499)
      const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      try {
        stream.respond(responseHeaders(h, t.dropResponse), endStream ? { endStream: true } : { waitForTrailers: true });
        trailersAwaited = !endStream;
      } catch {
        // A head node:http2 will not send (a :status outside 200-599, which an HTTP/2 peer may send): nothing went
        // to the client, so another endpoint (its head deadline still running), or 502; never a crash.
        return refuseHead(up);
      }
      // The head is the client's: its status is the one logged, no other attempt from here on, the body no longer held.
      deadlines.headSent();
      replay.release();
      status = Number(h[':status']) || 0;
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (endStream) return;
      // Ended here, not by the pipe: a body shorter than its content-length ended by the upstream's RST_STREAM
      // (NO_ERROR), which node:http2 reports as an end, is a reset to the client, never a complete response.
      const bodiless = headers[':method'] === 'HEAD' || status === 204 || status === 304;
      const length = bodiless || h['content-length'] === undefined ? -1 : Number(h['content-length']);
      up.pipe(stream, { end: false });
      up.once('end', () => {
        if (stream.destroyed || stream.closed) return;
        // node:http2 emits 'end' for a stream the upstream reset (any code) as for one it ended: only END_STREAM is whole.
        if ((up.rstCode ?? 0) !== 0) return upstreamCut(up.rstCode ?? NGHTTP2_CANCEL);
        if (length >= 0 && bytesOut < length) {
          flag ??= 'upstream_closed';
          stream.close(NGHTTP2_INTERNAL_ERROR);
          // A gRPC answer ends with its grpc-status (trailers): without one its hop was cut (a reset with NO_ERROR).
        } else if (grpc && grpcStatus === undefined) upstreamCut(NGHTTP2_CANCEL);
        else stream.end();
      });
      // Counted from here, not from the request: a 'data' listener added earlier would start the upstream stream
      // flowing before this pipe exists, and Node emits 'response' a tick after the frame, so a body that came in
      // the same read as the head went to the counter alone and the client got the head and an empty end.
      up.on('data', (d: Buffer) => {
        bytesOut += d.length;
        deadlines.moved();
      });
    });
    // 1xx informational heads (100 Continue for a client that sent `expect: 100-continue`, 103 Early Hints) go on
    // to the client before the final head, each once: Node reports every one as 'headers' (a 100 also as
    // 'continue', which relayed too sent each hop's client two 100s).
    up.on('headers', (h) => {
      const s = Number(h[':status']);
      if (req !== up) return;
      if (s < 100 || s >= 200 || s === 101) return;
      deadlines.moved();
      if (cut || !canRespond(stream)) return;
      for (const k in h) interimBytes += k.length + String(h[k]).length;
      if (++interim > MAX_INTERIM_HEADS || interimBytes > MAX_INTERIM_BYTES) return refuseHead(up);
      try {
        stream.additionalHeaders(responseHeaders(h, t.dropResponse));
      } catch {
        // An interim head node:http2 will not send is dropped; the final one decides.
      }
    });
    up.on('trailers', (h) => {
      if (req !== up) return;
      deadlines.moved();
      trailers = responseHeaders(h, t.dropResponse);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    if (again) replay.replayOnto(up);
    if (noBody) stream.resume(); // read to its end ('end' arms the head deadline), nothing to relay
    else if (!stream.readableEnded) {
      // Once per exchange, in the same tick as the first pipe (both see every chunk from the first on).
      if (!counting) {
        counting = true;
        stream.on('data', (d: Buffer) => {
          bytesIn += d.length;
          deadlines.moved();
          replay.push(d);
        });
      }
      unrelay = relayRequestBody(stream, up);
    } else if (bodyAhead && endedCleanly(stream)) up.end();
    up.on('close', () => {
      // The app is over its limits on this session: new streams go to another (h2-upstream.ts refused).
      const calm = up.rstCode === NGHTTP2_ENHANCE_YOUR_CALM;
      if (calm) upstream.refused(session);
      if (cut || req !== up) return; // answered (or reset) by a deadline already, or left for another attempt
      if (canRespond(stream)) {
        const repeat = up.rstCode === NGHTTP2_REFUSED_STREAM || (calm && REPEAT_AFTER_CALM.has(String(headers[':method'])));
        if (repeat && replay.held && refusals < REFUSED_RETRIES) {
          refusals++;
          route?.refusedAgain();
          again = true;
          unrelay();
          return open(upstreamOf(), calm); // after ENHANCE_YOUR_CALM, a new session: the others may be as full
        }
        // Reset, or its session gone, before any head: a request that may go twice goes to another endpoint.
        if (retried(up, 'reset')) return;
        flag ??= 'upstream_closed';
        return answerUnavailable('upstream_reset');
      }
      if (up.rstCode && up.rstCode !== 0) upstreamCut(up.rstCode);
    });
  }, fresh);
  /**
   * The upstream stream was reset (or its session went) after the head reached the client: never a clean end for the
   * client. A gRPC call ends with UNAVAILABLE trailers while the stream can still take them, Envoy's status for an
   * upstream reset and the one retry policies act on (CANCELLED reads as the client's own cancel); any other stream,
   * or a call whose trailers cannot go, is reset with the upstream's code (CANCEL if it had none).
   */
  const upstreamCut = (code: number) => {
    if (finished || cut || lateError !== undefined) return; // once: its 'end' and its 'close' both report a reset
    flag ??= 'upstream_closed';
    lateError = 'upstream_reset';
    if (stream.destroyed || stream.closed) return;
    if (grpc && !stream.writableEnded) {
      grpcStatus = String(GRPC_UNAVAILABLE);
      trailers = { 'grpc-status': grpcStatus, 'grpc-message': 'upstream reset' };
      stream.end();
      return;
    }
    stream.close(code || NGHTTP2_CANCEL);
  };
  /**
   * The attempt on `up` failed with `reason` before anything final reached the client: whether the route sends the
   * request to another endpoint (as HTTP/1.1's Http1Exchange.tryRetry: only a request that may go twice, whose whole
   * body is held; the route applies max retries, the budget, the backoff within the total, and records the outcome).
   * True: `up` is cancelled and the next attempt starts after its backoff.
   */
  const retried = (up: http2.ClientHttp2Stream, reason: RetryReason): boolean => {
    if (!route || finished || cut || !canRespond(stream)) return false;
    const next = route.retry(reason, t.replayable === true && replay.held && endedCleanly(stream), deadlines.totalDeadlineMs);
    if (!next) return false;
    req = undefined;
    cancelUpstream(up);
    unrelay();
    again = true;
    // Each endpoint's answer has its own allowance of interim heads.
    interim = 0;
    interimBytes = 0;
    const go = () => {
      if (!finished && !cut) open(next.lease.resource);
    };
    if (next.delayMs > 0) deadlines.backoff(go, next.delayMs);
    else go();
    return true;
  };
  /**
   * The upstream's head cannot be relayed: another endpoint for a request that may go twice (as HTTP/1.1 retries a
   * malformed response, `bad_response`), else 502 bad_upstream_response (gRPC: UNAVAILABLE), its stream cancelled.
   */
  const refuseHead = (up: http2.ClientHttp2Stream) => {
    if (retried(up, 'bad_response')) return;
    cut = true;
    status = grpc ? 200 : 502;
    if (grpc) grpcStatus = String(GRPC_UNAVAILABLE);
    respondLocal(stream, grpc, 502, 'bad_upstream_response', GRPC_UNAVAILABLE);
    if (req) cancelUpstream(req);
    finish('bad_upstream_response');
  };
  open(upstreamOf());
}
