// An HTTP/2 client's request to an `http` route: re-made as an HTTP/1.1 request through the route's pool, the one
// its HTTP/1.1 clients use (pool-agent.ts: its bound and queue, the multiplexed session to a Tessera peer with secure
// naming, keep-alive connections otherwise; a full queue is 503 as for them), bodies piped both ways, the response
// refused when its framing is ambiguous (the sidecars' RFC 9112 section 6.3 rules) and stripped of its
// connection-specific fields, those its Connection header names included (h2-response-fields.ts), the upstream
// request dropped when the client leaves before its request went out whole (a whole one drains so its pooled
// connection survives, up to VOID_LIMIT bytes and requestMs: a stream the app never ends is cut, not read on for
// ever), response trailers relayed as HTTP/2 trailers. Deadlines as on every HTTP/2 stream (h2/h2-forward.ts
// StreamSettings): the response head within requestMs, no byte either way for idleMs, the whole exchange within
// totalMs when set. A CONNECT never gets here (refused with the request forms no hop can carry, h2-heads.ts).
import { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, request } from 'node:http';
import type * as http2 from 'node:http2';
import { constants as http2constants } from 'node:http2';
import { isTesseraError } from '../../../common/errors.js';
import { cutStatus, type RefusalReason, unflushed } from '../../../common/refusal-reasons.js';
import { BodyPace } from '../h2/body-pace.js';
import { canRespond, respondLocal, type StreamSettings } from '../h2/h2-forward.js';
import { requestAuthority } from '../h2/h2-heads.js';
import { endedCleanly, relayRequestBody, stopUnendedRequest } from '../h2/request-end.js';
import { H2_TO_H1_REQUEST_DROP } from '../http1/connection-fields.js';
import { connectionNamed } from '../http1/head-rewrite.js';
import { type ExchangeFlag, IDEMPOTENT } from '../http1/http1-exchange.js';
import { headOfParsedResponse, MAX_INTERIM_BYTES, MAX_INTERIM_HEADS, responseFraming } from '../http1/http1-head.js';
import { VOID_LIMIT } from '../http1/http1-response.js';
import { awaitsContinue } from '../http1/request-body-pace.js';
import { APP_RESPONSE_DROP, EDGE_CLIENT_DROP, FieldNames } from '../listeners/app-owned-fields.js';
import { LeaseSocket, staleKeepAlive } from '../upstream/lease-socket.js';
import { refusedUnprocessed } from '../upstream/unprocessed-refusal.js';
import type { EdgeUpstream } from './edge-upstreams.js';
import { h2ResponseFields } from './h2-response-fields.js';

/** Connection-specific or the edge's to set: never copied from the client request. */
const DROP_REQUEST = EDGE_CLIENT_DROP.with(H2_TO_H1_REQUEST_DROP);

export interface BridgeResult {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
  readonly responseFlags?: ExchangeFlag;
}

export interface BridgeOptions {
  readonly target: string;
  /** Headers the edge adds (forwarding, XFCC, traceparent). */
  readonly add: Readonly<Record<string, string>>;
  readonly timeouts: StreamSettings;
}

export function forwardStreamToHttp1(stream: http2.ServerHttp2Stream, incoming: http2.IncomingHttpHeaders, up: EdgeUpstream, o: BridgeOptions, done: (r: BridgeResult) => void): void {
  const headers: OutgoingHttpHeaders = {};
  for (const k in incoming) {
    const v = incoming[k];
    if (v === undefined || k.startsWith(':') || DROP_REQUEST.has(k)) continue;
    headers[k] = v;
  }
  // The authority the edge routed by (`:authority`, else the client's `host`, dropped above with the other fields).
  headers.host = requestAuthority(incoming) || up.authority;
  Object.assign(headers, o.add);
  const method = String(incoming[':method'] ?? 'GET');
  const open = () => request({ agent: up.agent, host: up.route.upstream.host, port: up.route.upstream.port, method, path: o.target, headers, setHost: false });
  let upReq = open();
  let replayed = false;
  // Captured now: a destroyed stream no longer names its session.
  const downSession = stream.session;
  let finished = false;
  let flag: ExchangeFlag | undefined;
  let status = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let upRes: IncomingMessage | undefined;
  /** The request body's pace (limits.minRequestBodyRate), set up below with the deadlines. */
  let pace: BodyPace | undefined;
  const t = o.timeouts;
  const { timers } = t;
  const finish = (error?: string) => {
    if (finished) return;
    finished = true;
    timers.clearTimeout(headTimer);
    timers.clearTimeout(totalTimer);
    pace?.stop();
    stream.setTimeout(0);
    done({ status, bytesIn, bytesOut, ...(error ? { error } : {}), ...(flag ? { responseFlags: flag } : {}) });
  };
  const local = (s: number, code: RefusalReason) => {
    status = s;
    respondLocal(stream, false, s, code, 0);
    // A client still sending (a 408 to a trickled upload) is told to stop once the answer is out: it kept trickling
    // into a stream the proxy had answered, holding a slot of its session (audit 62b F3).
    stream.once('finish', () => stopUnendedRequest(stream));
    finish(code);
  };
  /** A deadline passed: answered before the head; after it both sides are cut (the status stays the one sent). */
  const cut = (reason: 'request_timeout' | 'total_timeout' | 'stream_idle_timeout' | 'request_body_timeout') => {
    // A stream the client closed (reset with NO_ERROR: closed before destroyed) is reported by its 'close'.
    if (finished || stream.closed) return;
    flag = reason;
    t.onCut?.(reason);
    // The client's stream first: once the upstream request is destroyed its response may end, and a pipe
    // would then end the client's stream cleanly (a cut must look like one).
    upRes?.unpipe();
    // 408: the client's body stalled; 504: the app stopped reading it (bytes unflushed on the upstream request while
    // nothing waits for the client).
    if (canRespond(stream)) local(cutStatus(reason, endedCleanly(stream), unflushed(upReq) && !unflushed(stream)), reason);
    else {
      // RST_STREAM INTERNAL_ERROR. Not close(CANCEL): on a stream whose request has ended, Node sends END_STREAM
      // before the RST and the client would take the cut for a complete response.
      stream.destroy(new Error(reason));
      finish(reason);
    }
    upReq.destroy();
  };
  // The head deadline runs from the request being complete (its body included), as in forwardStream and on HTTP/1.1:
  // an upload that moves is not cut, and one that stalls is the idle timeout's 408, not the upstream's 504.
  // These timers hold the process (not unref'd), as they always have on this path.
  let headTimer: unknown;
  const armHead = () => {
    if (!finished && !upRes) headTimer = timers.setTimeout(() => cut('request_timeout'), t.requestMs, 'keep-alive');
  };
  if (stream.readableEnded) armHead();
  else stream.once('end', armHead);
  // The body's pace (limits.minRequestBodyRate), until it ends or an answer begins; with Expect: 100-continue from the
  // app's 100 or the body's first byte. None for a stream whose HEADERS ended it (a GET): readableEnded is still false
  // then, and every GET made a pace and armed a timer (audit 62e F2).
  const rate = t.bodyRate;
  if (rate && rate.bytesPerSecond > 0 && !stream.readableEnded && !stream.endAfterHeaders) {
    const paced = new BodyPace({ ...rate, nowMs: t.nowMs, timers, held: () => unflushed(upReq), behind: () => cut('request_body_timeout') });
    if (!awaitsContinue(typeof incoming.expect === 'string' ? incoming.expect : undefined)) paced.start();
    stream.once('end', () => paced.stop());
    pace = paced;
  }
  const totalTimer = t.totalMs ? timers.setTimeout(() => cut('total_timeout'), t.totalMs, 'keep-alive') : undefined;
  // Node's stream timeout restarts on every read and write of this stream, either way.
  if (t.idleMs > 0) stream.setTimeout(t.idleMs, () => cut('stream_idle_timeout'));
  // Interim heads are not relayed on this path (Node's client reads them as 'information'), but bounded as on the
  // others: an app sending them without end held the client until the head deadline.
  let interim = 0;
  let interimBytes = 0;
  /**
   * The attempt's connection went before any answer, with no byte of the body sent yet (and no answer begun here): the
   * upstream's proxy refused its stream unprocessed (any method), or a reused keep-alive connection was stale (an
   * idempotent method) — sent again, once, as the HTTP/1.1 paths do. Before, the HTTP/2 client got 502 where an
   * HTTP/1.1 client's request was replayed: a sidecar's drain (its GOAWAY racing a new stream) failed HTTP/2 clients.
   */
  const replayable = (err: Error): boolean =>
    !replayed && upRes === undefined && bytesIn === 0 && !stream.headersSent && !stream.closed && (refusedUnprocessed(err) || (staleKeepAlive(err) && IDEMPOTENT.has(method)));
  const wire = (req: ClientRequest): void => {
    req.on('information', (info) => {
      // The app's 100 ends an Expect: 100-continue wait: the body's pace starts (audit 61j F1: a stream with that
      // header and no DATA held its pool connection until streamIdleTimeout), and the client may send.
      if (info.statusCode === 100) {
        pace?.start();
        if (!stream.headersSent && !stream.closed) {
          try {
            stream.additionalHeaders({ ':status': 100 });
          } catch {
            // Answered or reset meanwhile: nothing to tell.
          }
        }
      }
      interimBytes += info.rawHeaders.reduce((n, f) => n + f.length, 0);
      if (++interim <= MAX_INTERIM_HEADS && interimBytes <= MAX_INTERIM_BYTES) return;
      upReq.destroy();
      local(502, 'bad_upstream_response');
    });
    // A 101 to a request that asked for no upgrade (this path forwards none): Node's client hands the socket over and
    // waits; the app's answer is not one to forward (502, as on the HTTP/1.1 paths), not a wait for the head deadline.
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      local(502, 'bad_upstream_response');
    });
    req.on('response', (response) => {
      upRes = response;
      timers.clearTimeout(headTimer);
      pace?.stop();
      const head = headOfParsedResponse(response.statusCode ?? 0, response.httpVersionMinor, response.rawHeaders);
      if (responseFraming(head, method) === 'bad_request') {
        response.destroy();
        upReq.destroy();
        local(502, 'bad_upstream_response');
        return;
      }
      status = response.statusCode ?? 502;
      // Dropped with the fields its Connection names: from a plain upstream (an app), what only a proxy says.
      const connNamed = connectionNamed(head);
      const named = up.route.spiffeId ? connNamed : new FieldNames([...(connNamed ?? []), ...APP_RESPONSE_DROP]);
      const out: OutgoingHttpHeaders = { ':status': status, ...h2ResponseFields(response.headers, named) };
      // A 204, 205 or 304 has no body: node:http2 sends a content-length with it and the client resets the stream
      // (PROTOCOL_ERROR), never seeing the answer.
      if (status === 204 || status === 205 || status === 304) delete out['content-length'];
      // The client left (a stream reset with NO_ERROR is closed before it is destroyed): its 'close' reports it.
      if (stream.destroyed || stream.closed) return;
      // A field node:http2 still refuses would throw here, from the upstream's answer: a 502, never a crash.
      try {
        stream.respond(out, { waitForTrailers: true });
      } catch {
        response.destroy();
        upReq.destroy();
        local(502, 'bad_upstream_response');
        return;
      }
      // HTTP/1.1 response trailers (chunked) become HTTP/2 trailers, with the same names dropped as in the head.
      stream.once('wantTrailers', () => {
        const fields = h2ResponseFields(response.trailers, named);
        try {
          stream.sendTrailers(fields);
        } catch {
          // The body went out whole but its trailers cannot: the stream is reset, never ended as if complete.
          flag ??= 'upstream_closed';
          stream.close(http2constants.NGHTTP2_INTERNAL_ERROR);
          finish('bad_upstream_response');
          return;
        }
        stopUnendedRequest(stream, Object.keys(fields).length);
      });
      response.on('data', (c: Buffer) => {
        bytesOut += c.length;
      });
      response.pipe(stream);
      response.on('end', () => {
        finish();
        // Answered whole before the client's body ended (a 401 or 413 before the upload): the exchange is over. The
        // upstream request goes with its connection (it can carry nothing more), and once the answer is out the client
        // is told to stop sending ('wantTrailers' above). Before, both waited for a body that never had to come, past
        // every timeout, holding a place in the route's pool (audit 58e).
        if (stream.readableEnded || stream.destroyed) return;
        unrelay();
        upReq.destroy();
        stream.resume();
      });
      response.on('error', () => {
        flag ??= 'upstream_closed';
        // RST_STREAM INTERNAL_ERROR (destroy with an error, as cut() does): destroyed without one the stream ended
        // with NO_ERROR, and an HTTP/2 client took the part it got for the whole body.
        response.unpipe();
        if (!stream.destroyed) stream.destroy(new Error('upstream_reset'));
        finish('upstream_reset');
      });
    });
    req.on('error', (err: Error & { readonly code?: unknown }) => {
      if (finished || req !== upReq) return;
      if (replayable(err)) {
        // Once: on another connection or stream of the pool, the request's body (none came yet) relayed to it instead.
        replayed = true;
        unrelay();
        upReq = open();
        wire(upReq);
        unrelay = relayRequestBody(stream, upReq);
        if (endedCleanly(stream)) upReq.end();
        return;
      }
      flag ??= 'upstream_closed';
      // Node's parser refused the upstream's answer (a malformed head, interim ones included): not a connection
      // failure, the same reason as the HTTP/1.1 paths give. Not every error has a string code: a multiplexed
      // stream's reset carries its numeric one (read as a string, it crashed the edge).
      const unparsable = typeof err.code === 'string' && err.code.startsWith('HPE_');
      if (stream.headersSent) {
        upRes?.unpipe();
        stream.destroy(new Error('upstream_reset')); // RST_STREAM INTERNAL_ERROR, never a clean end
        finish(unparsable ? 'bad_upstream_response' : 'upstream_reset');
      // A full pool queue: the upstream is healthy, just saturated (503, as the HTTP/1.1 clients get). A connection
      // that went after the request reached it is a reset, as the HTTP/1.1 paths log it; none had: unavailable.
      } else if (unparsable) local(502, 'bad_upstream_response');
      else if (req.socket instanceof LeaseSocket && req.socket.attached) local(502, 'upstream_reset');
      else local(isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL') ? 503 : 502, 'upstream_unavailable');
    });
  };
  wire(upReq);
  stream.on('data', (c: Buffer) => {
    bytesIn += c.length;
    pace?.start();
    pace?.received(c.length);
  });
  stream.on('close', () => {
    // Over already, but a request never sent whole can carry nothing more: its connection goes (audit 58d).
    if (finished) return void (upReq.writableFinished || upReq.destroy());
    if (status === 0) status = 499; // nginx's "client closed request": nothing was sent
    // Its session cut at the drain deadline: this proxy ended it, not the client.
    const drained = t.drainCuts?.has(downSession) ?? false;
    flag ??= drained ? 'drain_timeout' : 'downstream_closed';
    finish(drained ? undefined : 'downstream_reset');
    // A request that went out whole lets its response drain so the pooled mTLS connection survives (clients
    // abort all the time); a half-sent one cannot be reused.
    if (!upReq.writableFinished) {
      upReq.destroy();
      return;
    }
    drainIntoVoid(upReq, upRes, t.requestMs, timers);
  });
  // Ended only when the client ended its body: a stream it reset, or nghttp2 refused (a content-length its DATA did
  // not meet), leaves the request unfinished, and 'close' above destroys it (the app sees an aborted connection).
  let unrelay = relayRequestBody(stream, upReq);
}

/**
 * Reads a left client's answer to its end so its pooled connection survives, as the HTTP/1.1 paths do, but no more
 * than VOID_LIMIT bytes of it and within `waitMs` from now: past either (an endless download, an event stream, a
 * large file) the upstream request and its connection go. Unbounded, one anonymous client's abandoned downloads
 * kept the edge and the sidecar moving bytes for nobody for as long as the app sent them.
 */
function drainIntoVoid(upReq: ClientRequest, upRes: IncomingMessage | undefined, waitMs: number, timers: StreamSettings['timers']): void {
  let read = 0;
  const drop = () => {
    timers.clearTimeout(timer);
    upReq.destroy();
  };
  const timer = timers.setTimeout(drop, waitMs, 'keep-alive');
  upReq.once('close', () => timers.clearTimeout(timer));
  const drain = (res: IncomingMessage) => {
    res.unpipe();
    if (res.complete) return timers.clearTimeout(timer); // read whole already: the connection went back to the pool
    // A chunked answer is read too (unlike the HTTP/1.1 paths, which cut it): Node apps answer small ones chunked,
    // and the connection saved is an mTLS handshake; the byte and time bounds hold it.
    res.on('data', (c: Buffer) => {
      read += c.length;
      if (read > VOID_LIMIT) drop();
    });
    res.once('end', () => timers.clearTimeout(timer));
    res.resume(); // unpiped, it may have been paused
  };
  if (upRes) drain(upRes);
  else upReq.once('response', drain);
}
