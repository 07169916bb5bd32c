// One downstream HTTP/1.1 connection through the lean forwarder: heads are parsed and rewritten, bodies stream
// through untouched in both directions with backpressure, requests are answered in order over pooled upstream
// connections, and an allowed upgrade becomes a byte stream both ways. No node:http objects on this path: it is
// the proxy's hot loop. The state of the request in flight lives in its Http1Exchange, made per request.
import type { Socket } from 'node:net';
import { isTesseraError } from '../../../common/errors.js';
import type { RefusalReason } from '../../../common/refusal-reasons.js';
import type { UpstreamConn, UpstreamOwner } from '../upstream/connection-pool.js';
import { type BodyFramer, LengthFramer, UntilCloseFramer, framerFor } from './body-framer.js';
import { type ExchangeFlag, Http1Exchange } from './http1-exchange.js';
import type { SessionOptions } from './http1-session-types.js';
import { type AddedResponseHeaders, addedResponseHeaders, downstreamResponseHead, localResponse, responseNeedsRewrite, upstreamRequestHead } from './head-rewrite.js';
import { type BodyFraming, type HttpHead, headerValue, parseHead, requestFraming, responseFraming, upgradeRequested, wantsKeepAlive } from './http1-head.js';

enum St {
  /** Between requests, or reading the next head. */
  Head = 0,
  /** Reading the request body. */
  Body = 1,
  /** The request is complete; the response is awaited or streaming. */
  Await = 2,
  /** After a 101: bytes both ways, no more HTTP on this connection. */
  Tunnel = 3,
  Closed = 4,
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CRLF = Buffer.from('\r\n', 'latin1');
const NOTHING = Buffer.alloc(0);
/** nginx's "client closed request": the status logged when the client left before any response was sent. */
const CLIENT_CLOSED = 499;
/**
 * An answer whose client has left is still read (and dropped) when at most this much of it is to come: cheaper
 * than a new upstream (mTLS) connection. A stream or a larger body is cut with its connection instead.
 */
const VOID_LIMIT = 256 * 1024;

export class Http1Session implements UpstreamOwner {
  readonly #down: Socket;
  readonly #o: SessionOptions;
  #st: St = St.Head;
  /** Bytes read from the client and not yet parsed (a partial or pipelined head). */
  #buf: Buffer | null = null;
  #ex: Http1Exchange | null = null;
  /** Between exchanges: when the wait for the next head ends, and what it is called. */
  #waitDeadlineMs: number;
  #waitCode: 'headers_timeout' | 'idle_timeout' = 'idle_timeout';
  #keepAlive = true;
  readonly #added: AddedResponseHeaders | null;
  #downGone = false;
  #downPaused = false;

  constructor(down: Socket, opts: SessionOptions) {
    this.#down = down;
    this.#o = opts;
    this.#added = addedResponseHeaders(opts.responseHeaders);
    if (opts.firstHeadTimeout) this.#waitCode = 'headers_timeout';
    this.#waitDeadlineMs = opts.nowMs() + (opts.firstHeadTimeout ? opts.limits.headersTimeoutMs : opts.limits.idleTimeoutMs);
    down.on('data', (c: Buffer) => this.#onDownData(c));
    down.on('drain', () => this.#ex?.conn?.socket.resume());
    down.on('end', () => this.#onDownEnd());
    down.on('close', () => this.#onDownGone());
    down.on('error', () => this.#onDownGone());
  }

  /**
   * When the current wait ends (checked by the listener's sweep): between requests the headers or idle timeout;
   * during an exchange the earliest of request timeout (until the response head), total timeout and stream idle.
   */
  get deadlineMs(): number {
    const ex = this.#ex;
    if (!ex) return this.#waitDeadlineMs;
    const idle = ex.lastActivityMs + this.#o.limits.streamIdleTimeoutMs;
    return Math.min(idle, ex.resStarted ? ex.totalDeadlineMs : Math.min(ex.headDeadlineMs, ex.totalDeadlineMs));
  }

  /** Called by the sweep when deadlineMs has passed. */
  expire(): void {
    if (this.#st === St.Closed) return;
    const now = this.#o.nowMs();
    const ex = this.#ex;
    if (!ex) {
      if (now < this.#waitDeadlineMs) return;
      this.#o.hooks.rejected(this.#waitCode);
      // Idle keep-alive: just close. A head that stalls gets its 408, and the connection is destroyed, not
      // ended: a client that never closes its side must not keep the descriptor.
      if (this.#st !== St.Head || this.#buf) this.#write(this.#local(408, this.#waitCode, true));
      this.#close();
      return;
    }
    let flag: ExchangeFlag;
    if (!ex.resStarted && now >= ex.headDeadlineMs) flag = 'request_timeout';
    else if (now >= ex.totalDeadlineMs) flag = 'total_timeout';
    else if (now >= ex.lastActivityMs + this.#o.limits.streamIdleTimeoutMs) flag = 'stream_idle_timeout';
    else return; // bytes moved since the sweep looked
    this.#o.hooks.rejected(flag);
    ex.mark(flag);
    if (this.#st === St.Tunnel) {
      this.#endTunnel(ex, false);
      return;
    }
    // Before the head: 408 while the client's own body stalls, 504 when the upstream is the slow one. Destroyed
    // after the answer, as above.
    this.#abort(ex, flag === 'stream_idle_timeout' && !ex.reqDone ? 408 : 504, flag, true);
  }

  /** Graceful drain: close now if idle between requests, otherwise after the exchange in flight. */
  drain(): void {
    this.#keepAlive = false;
    if (this.#st === St.Head && !this.#buf) this.#close();
  }

  get closed(): boolean {
    return this.#st === St.Closed;
  }

  // ---- downstream → upstream

  #onDownData(chunk: Buffer): void {
    const ex = this.#ex;
    if (ex) ex.lastActivityMs = this.#o.nowMs();
    if (this.#st === St.Tunnel) {
      ex!.bytesIn += chunk.length;
      this.#toUpstream(ex!, chunk);
      return;
    }
    if (this.#st === St.Body) {
      this.#feedRequestBody(ex!, chunk, 0);
      return;
    }
    if (this.#st === St.Closed) return;
    this.#buf = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    if (this.#st === St.Head) this.#nextRequest();
    else if (this.#buf.length > this.#o.limits.maxHeaderBytes) this.#pauseDown(); // pipelined: wait our turn
  }

  #nextRequest(): void {
    const buf = this.#buf;
    if (!buf) return;
    const r = parseHead(buf, 0, 'request', this.#o.limits);
    if ('incomplete' in r) {
      if (this.#waitCode !== 'headers_timeout') {
        this.#waitCode = 'headers_timeout';
        this.#waitDeadlineMs = this.#o.nowMs() + this.#o.limits.headersTimeoutMs;
      }
      return;
    }
    if ('rejected' in r) {
      this.#refuse(r.rejected === 'bad_request' ? 400 : 431, r.rejected);
      return;
    }
    const head = r.head;
    const framing = requestFraming(head);
    if (framing === 'bad_request') {
      this.#refuse(400, 'bad_request');
      return;
    }
    if (framing === 'not_implemented') {
      this.#refuse(501, 'unsupported_transfer_coding');
      return;
    }
    // RFC 9112 section 3.2: exactly one Host in HTTP/1.1 (two could route differently at two hops).
    if ((head.minor === 1 && headerValue(head, 'host') === undefined) || head.names.indexOf('host') !== head.names.lastIndexOf('host')) {
      this.#refuse(400, 'bad_request');
      return;
    }

    const now = this.#o.nowMs();
    this.#keepAlive &&= wantsKeepAlive(head);
    const upgrade = upgradeRequested(head);
    // Authorized like any request first: a denied upgrade is a 403, never a switch.
    const plan = this.#o.hooks.plan(head);
    const rest = buf.length > head.length ? buf.subarray(head.length) : null;
    const pool = plan.forward ? (plan.pool ?? this.#o.pool) : undefined;
    // Answered here: the plan's refusal, an upgrade the plan does not allow, or no pool to forward to.
    const refusal: readonly [number, RefusalReason] | null = !plan.forward
      ? [plan.status, plan.code]
      : upgrade !== null && plan.upgrade !== true
        ? [501, 'upgrade_unsupported']
        : !pool
          ? [502, 'upstream_unavailable']
          : null;
    const forward = plan.forward && refusal === null;
    const ex = new Http1Exchange({
      head,
      context: plan.context,
      pool: pool ?? null,
      startMs: now,
      // Request trailers are dropped (an empty trailer section is sent): they would reach the app unchecked.
      upstreamHead: plan.forward && forward ? upstreamRequestHead(head, plan, upgrade) : NOTHING,
      upgrade: forward ? upgrade : null,
      totalTimeoutMs: (plan.forward && plan.totalTimeoutMs) || this.#o.totalTimeoutMs,
      reqFramer: forward ? framerFor(framing, true) : null,
    });
    this.#ex = ex;
    if (refusal) {
      const [status, code] = refusal;
      if (code === 'upgrade_unsupported') this.#o.hooks.rejected(code);
      // A refused request with a body, or a refused upgrade, is answered and the connection closed rather than
      // draining the body or guessing what the client sends next.
      const close = !this.#keepAlive || framing.kind !== 'none' || upgrade !== null;
      this.#buf = rest;
      this.#send(ex, this.#local(status, code, close));
      ex.status = status;
      this.#finish(ex, code);
      if (close) this.#close(true);
      else this.#afterExchange();
      return;
    }
    this.#buf = null;
    if (ex.reqDone) this.#requestComplete(ex, now);
    else this.#st = St.Body;
    if (rest) {
      if (this.#st === St.Body) this.#feedRequestBody(ex, rest, 0);
      else this.#buf = rest;
    }
    if (this.#st === St.Closed) return;
    pool!.acquire(this, (err, conn) => this.#onLeased(ex, err, conn));
    // Only while a body has nowhere to go: pausing costs two epoll_ctl calls, so the common case never does.
    if (!ex.conn && this.#st === St.Body) this.#pauseDown();
  }

  /** The whole request is read: from now the upstream has limits.requestTimeout to send the response head. */
  #requestComplete(ex: Http1Exchange, now: number): void {
    ex.reqDone = true;
    ex.headDeadlineMs = now + this.#o.limits.requestTimeoutMs;
    this.#st = St.Await;
  }

  #feedRequestBody(ex: Http1Exchange, buf: Buffer, start: number): void {
    const r = ex.reqFramer!.feed(buf, start);
    if (r.error) {
      this.#abort(ex, 400, 'bad_request');
      return;
    }
    ex.bytesIn += r.consumed;
    const kept = r.kept ?? r.consumed;
    if (kept > 0) this.#toUpstream(ex, start === 0 && kept === buf.length ? buf : buf.subarray(start, start + kept));
    if (r.done) {
      if (r.kept !== undefined) this.#toUpstream(ex, CRLF); // the empty trailer section that ends the body
      this.#requestComplete(ex, ex.lastActivityMs);
      const rest = start + r.consumed;
      if (rest < buf.length) this.#buf = buf.subarray(rest);
    }
  }

  #toUpstream(ex: Http1Exchange, part: Buffer): void {
    if (!ex.conn) {
      if (this.#st !== St.Tunnel) ex.pending.push(part);
      return;
    }
    if (!ex.conn.socket.write(part)) this.#pauseDown();
  }

  #onLeased(ex: Http1Exchange, err: Error | null, conn?: UpstreamConn): void {
    if (this.#ex !== ex || this.#st === St.Closed) {
      // The exchange ended while the lease was pending (client gone, timeout): the connection was never used.
      if (conn) ex.pool!.release(conn);
      return;
    }
    if (err || !conn) {
      this.#abort(ex, isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL') ? 503 : 502, 'upstream_unavailable');
      return;
    }
    ex.conn = conn;
    ex.upstreamResumed = conn.resumed;
    const pending = ex.pending;
    ex.pending = [];
    const ok = conn.socket.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
    if (ok && this.#st === St.Body) this.#resumeDown();
  }

  // ---- upstream → downstream

  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void {
    const ex = this.#ex;
    if (!ex || conn !== ex.conn) return;
    ex.lastActivityMs = this.#o.nowMs();
    if (this.#st === St.Tunnel) {
      this.#send(ex, chunk);
      return;
    }
    if (ex.resFramer) {
      this.#feedResponseBody(ex, chunk, 0);
      return;
    }
    let raw: Buffer = ex.resBuf ? Buffer.concat([ex.resBuf, chunk]) : chunk;
    ex.resBuf = raw;
    for (;;) {
      const r = parseHead(raw, 0, 'response', this.#o.responseLimits);
      if ('incomplete' in r) return;
      if ('rejected' in r) {
        this.#abort(ex, 502, 'bad_upstream_response');
        return;
      }
      const head = r.head;
      const rest: Buffer | null = raw.length > head.length ? raw.subarray(head.length) : null;
      if (head.status === 101) {
        // Only the answer to an upgrade this exchange asked for, and only once the request went out whole.
        if (ex.upgrade === null || !ex.reqDone) this.#abort(ex, 502, 'bad_upstream_response');
        else this.#startTunnel(ex, raw.subarray(0, head.length), rest);
        return;
      }
      if (head.status! < 200) {
        // Interim responses (100 Continue, 103 Early Hints) pass through, except to an HTTP/1.0 client, which
        // cannot read them (RFC 9110 section 15.2); the final one follows.
        if (ex.head.minor === 1) this.#send(ex, raw.subarray(0, head.length));
        ex.resBuf = rest;
        if (!rest) return;
        raw = rest;
        continue;
      }
      this.#responseHead(ex, raw, head, rest);
      return;
    }
  }

  #responseHead(ex: Http1Exchange, raw: Buffer, head: HttpHead, rest: Buffer | null): void {
    const framing = responseFraming(head, ex.head.method!);
    if (framing === 'bad_request') {
      this.#abort(ex, 502, 'bad_upstream_response');
      return;
    }
    if (this.#downGone && !fitsTheVoid(framing)) {
      this.#giveUp(ex);
      return;
    }
    ex.resBuf = null;
    ex.resClosing = framing.kind === 'close' || wantsKeepAlive(head) === false;
    if (framing.kind === 'close') this.#keepAlive = false;
    const closing = !this.#keepAlive;
    // An HTTP/1.0 client keeps the connection only when told so (RFC 9112 section 9.3).
    const http10 = ex.head.minor === 0;
    const added = this.#added;
    const headBytes = responseNeedsRewrite(head, closing, http10, added) ? downstreamResponseHead(raw.subarray(0, head.length), head, closing, http10, added) : raw.subarray(0, head.length);
    ex.resFramer = framerFor(framing);
    if (!ex.resFramer) {
      this.#started(ex, head.status!);
      this.#send(ex, headBytes);
      if (rest) ex.resClosing = true; // bytes after a bodiless response: do not trust this connection again
      this.#exchangeDone(ex);
      return;
    }
    if (!rest) {
      this.#started(ex, head.status!);
      this.#send(ex, headBytes);
      return;
    }
    // Head and (part of) the body in one write: one TLS record, one syscall.
    const r2 = ex.resFramer.feed(rest, 0);
    if (r2.error) {
      this.#abort(ex, 502, 'bad_upstream_response');
      return;
    }
    this.#started(ex, head.status!);
    const body = r2.consumed === rest.length ? rest : rest.subarray(0, r2.consumed);
    this.#send(ex, body.length === 0 ? headBytes : Buffer.concat([headBytes, body]));
    if (r2.done) {
      if (r2.consumed < rest.length) ex.resClosing = true;
      this.#exchangeDone(ex);
    }
  }

  /** The final response head goes to the client now: its status is what the exchange is recorded with. */
  #started(ex: Http1Exchange, status: number): void {
    if (!this.#downGone) ex.status = status; // otherwise nothing is sent: the record keeps 499
    ex.resStarted = true;
  }

  #feedResponseBody(ex: Http1Exchange, chunk: Buffer, start: number): void {
    const r = ex.resFramer!.feed(chunk, start);
    if (r.error) {
      this.#abort(ex, 502, 'bad_upstream_response');
      return;
    }
    if (r.consumed > 0) this.#send(ex, r.consumed === chunk.length ? chunk : chunk.subarray(start, start + r.consumed));
    if (r.done) {
      if (start + r.consumed < chunk.length) ex.resClosing = true;
      this.#exchangeDone(ex);
    }
  }

  onUpstreamDrain(): void {
    if (this.#st === St.Body || this.#st === St.Tunnel) this.#resumeDown();
  }

  /** An upgraded connection's upstream finished sending: the client's side is ended, the other way stays open. */
  onUpstreamEnd(conn: UpstreamConn): void {
    const ex = this.#ex;
    if (!ex || conn !== ex.conn) return;
    ex.mark('upstream_closed');
    if (!this.#downGone) this.#down.end();
  }

  onUpstreamGone(conn: UpstreamConn, _error: Error | undefined): void {
    const ex = this.#ex;
    if (!ex || conn !== ex.conn) return;
    ex.conn = null;
    if (this.#st === St.Tunnel) {
      ex.mark('upstream_closed');
      this.#endTunnel(ex, this.#down.readableEnded);
      return;
    }
    if (ex.resFramer instanceof UntilCloseFramer) {
      ex.resClosing = true;
      this.#exchangeDone(ex);
      return;
    }
    // A reused keep-alive connection the upstream had just closed: replay once if nothing was answered yet.
    if (!ex.resStarted && !ex.resBuf && conn.reused && !ex.retried && ex.reqDone && ex.reqFramer === null && IDEMPOTENT.has(ex.head.method!)) {
      ex.retried = true;
      ex.pending = [ex.upstreamHead];
      ex.pool!.acquire(this, (err, c) => this.#onLeased(ex, err, c));
      return;
    }
    ex.mark('upstream_closed');
    this.#abort(ex, 502, 'upstream_reset');
  }

  // ---- upgrade

  /** The app switched protocols: its 101 goes to the client and the connection becomes bytes both ways. */
  #startTunnel(ex: Http1Exchange, head: Buffer, rest: Buffer | null): void {
    const conn = ex.conn!;
    // Never pooled again, and no longer taking a pool slot: it may stay open for hours.
    ex.pool!.detach(conn);
    ex.resBuf = null;
    this.#started(ex, 101);
    this.#st = St.Tunnel;
    // From here an end of stream from either side is a half-close: the other direction keeps flowing.
    this.#down.allowHalfOpen = true;
    conn.socket.allowHalfOpen = true;
    this.#o.hooks.upgraded?.(1);
    this.#send(ex, rest ? Buffer.concat([head, rest]) : head);
    const early = this.#buf; // what the client sent after its upgrade request belongs to the new protocol
    this.#buf = null;
    if (early) {
      ex.bytesIn += early.length;
      this.#toUpstream(ex, early);
    }
    this.#resumeDown();
  }

  /** `graceful`: both sides finished sending, so what is still buffered for the client is flushed first. */
  #endTunnel(ex: Http1Exchange, graceful: boolean): void {
    this.#dropConn(ex);
    this.#o.hooks.upgraded?.(-1);
    this.#finish(ex, undefined);
    this.#close(graceful);
  }

  // ---- exchange end

  #exchangeDone(ex: Http1Exchange): void {
    const conn = ex.conn;
    ex.conn = null;
    if (conn) {
      if (ex.resClosing || !ex.reqDone) ex.pool!.discard(conn);
      else ex.pool!.release(conn);
    }
    this.#finish(ex, undefined);
    // Answered before its body was all read: the rest of the body would be parsed as the next request head.
    if (!this.#keepAlive || this.#downGone || !ex.reqDone) {
      this.#close(true);
      return;
    }
    this.#afterExchange();
  }

  #afterExchange(): void {
    this.#st = St.Head;
    this.#waitCode = 'idle_timeout';
    this.#waitDeadlineMs = this.#o.nowMs() + this.#o.limits.idleTimeoutMs;
    this.#resumeDown();
    if (this.#buf) this.#nextRequest();
  }

  #finish(ex: Http1Exchange, error: RefusalReason | undefined): void {
    if (this.#ex !== ex) return;
    this.#ex = null;
    const head = ex.head;
    this.#o.hooks.done(
      {
        method: head.method!,
        target: head.target!,
        status: ex.status || CLIENT_CLOSED,
        startMs: ex.startMs,
        endMs: this.#o.nowMs(),
        bytesIn: ex.bytesIn,
        bytesOut: ex.bytesOut,
        ...(error ? { error } : {}),
        upstreamResumed: ex.upstreamResumed,
        ...(ex.flag ? { responseFlags: ex.flag } : {}),
      },
      ex.context,
    );
  }

  #local(status: number, code: RefusalReason, close: boolean): Buffer {
    return localResponse(status, code, close, this.#added);
  }

  #refuse(status: number, code: RefusalReason): void {
    this.#o.hooks.rejected(code);
    this.#write(this.#local(status, code, true));
    this.#close(true);
  }

  /** The exchange cannot complete: answer if nothing was sent yet, otherwise cut the connection (`cut`: always). */
  #abort(ex: Http1Exchange, status: number, code: RefusalReason, cut = false): void {
    this.#dropConn(ex);
    if (!ex.resStarted && !this.#downGone) {
      this.#send(ex, this.#local(status, code, true));
      ex.status = status;
    }
    this.#finish(ex, code);
    this.#close(!ex.resStarted && !cut);
  }

  #dropConn(ex: Http1Exchange): void {
    const conn = ex.conn;
    ex.conn = null;
    if (conn) ex.pool!.discard(conn);
  }

  #pauseDown(): void {
    if (this.#downPaused) return;
    this.#downPaused = true;
    this.#down.pause();
  }

  #resumeDown(): void {
    if (!this.#downPaused) return;
    this.#downPaused = false;
    this.#down.resume();
  }

  /** Bytes of the exchange to the client, counted as sent. */
  #send(ex: Http1Exchange, b: Buffer): void {
    if (this.#downGone) return;
    ex.bytesOut += b.length;
    if (!this.#down.write(b)) ex.conn?.socket.pause();
  }

  #write(b: Buffer): void {
    if (!this.#downGone) this.#down.write(b);
  }

  /** The client finished sending: a half-close on an upgraded connection, otherwise the client is gone. */
  #onDownEnd(): void {
    const ex = this.#ex;
    if (this.#st !== St.Tunnel || !ex) {
      this.#onDownGone();
      return;
    }
    ex.mark('downstream_closed');
    ex.conn?.socket.end();
  }

  #onDownGone(): void {
    if (this.#downGone) return;
    this.#downGone = true;
    if (this.#st === St.Closed) return;
    const ex = this.#ex;
    if (ex && this.#st === St.Tunnel) {
      ex.mark('downstream_closed');
      const up = ex.conn?.socket;
      // Both sides finished sending: the upstream flushes what it still holds and closes by itself.
      if (up?.readableEnded && up.writableEnded) return;
      this.#endTunnel(ex, false);
      return;
    }
    if (ex) {
      ex.mark('downstream_closed');
      // The caller left mid-exchange. A request that went out whole, whose answer is small or still to come,
      // is answered into the void so the pooled upstream connection survives (bounded by the request timeout and
      // VOID_LIMIT); otherwise, e.g. a stream that could run for hours, the upstream connection goes with it.
      if (ex.conn && ex.reqDone && (ex.resFramer === null || smallRest(ex.resFramer))) {
        ex.conn.socket.resume(); // nobody will send 'drain' any more
        return;
      }
      this.#giveUp(ex);
      return;
    }
    this.#close();
  }

  /** The client is gone and the rest of the answer is not worth reading: record, drop the connection, close. */
  #giveUp(ex: Http1Exchange): void {
    this.#dropConn(ex);
    this.#finish(ex, undefined);
    this.#close();
  }

  #close(graceful = false): void {
    if (this.#st === St.Closed) return;
    this.#st = St.Closed;
    this.#buf = null;
    // Still leased: its exchange did not complete, so a late answer belongs to no one.
    if (this.#ex) this.#dropConn(this.#ex);
    if (graceful && !this.#downGone) this.#down.end();
    else this.#down.destroy();
  }
}

function fitsTheVoid(f: BodyFraming): boolean {
  return f.kind === 'none' || (f.kind === 'length' && f.length <= VOID_LIMIT);
}

function smallRest(f: BodyFramer): boolean {
  return f instanceof LengthFramer && f.remaining <= VOID_LIMIT;
}
