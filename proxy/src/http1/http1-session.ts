// One downstream HTTP/1.1 connection through the lean forwarder: heads are parsed and rewritten, bodies stream
// through untouched in both directions with backpressure, requests are answered in order over pooled upstream
// connections. No node:http objects on this path: it is the proxy's hot loop.
import type { Socket } from 'node:net';
import { isTesseraError } from '../../../common/errors.js';
import type { UpstreamConn, UpstreamOwner } from '../upstream/connection-pool.js';
import { type BodyFramer, UntilCloseFramer, framerFor } from './body-framer.js';
import type { SessionOptions } from './http1-session-types.js';
import { downstreamResponseHead, localResponse, responseNeedsRewrite, upstreamRequestHead } from './head-rewrite.js';
import { type HttpHead, headerValue, parseHead, requestFraming, responseFraming, wantsKeepAlive } from './http1-head.js';

enum St {
  Head = 0,
  Body = 1,
  Await = 2,
  Closed = 3,
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CRLF = Buffer.from('\r\n', 'latin1');

export class Http1Session implements UpstreamOwner {
  readonly #down: Socket;
  readonly #o: SessionOptions;
  #st: St = St.Head;
  #buf: Buffer | null = null;
  /** When the current wait ends: headers, idle or request timeout (checked by the listener's sweep). */
  deadlineMs: number;
  #deadlineCode: 'headers_timeout' | 'idle_timeout' | 'request_timeout' = 'idle_timeout';

  // The exchange in flight.
  #head: HttpHead | null = null;
  #context: unknown;
  #reqFramer: BodyFramer | null = null;
  #reqDone = false;
  #keepAlive = true;
  #conn: UpstreamConn | null = null;
  #pending: Buffer[] = [];
  #resBuf: Buffer | null = null;
  #resFramer: BodyFramer | null = null;
  #resStarted = false;
  #resClosing = false;
  #startMs = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #status = 0;
  #retried = false;
  #firstHead: Buffer | null = null;
  #downGone = false;
  #downPaused = false;

  constructor(down: Socket, opts: SessionOptions) {
    this.#down = down;
    this.#o = opts;
    this.deadlineMs = opts.nowMs() + opts.limits.idleTimeoutMs;
    down.on('data', (c: Buffer) => this.#onDownData(c));
    down.on('drain', () => this.#conn?.socket.resume());
    down.on('end', () => this.#onDownGone());
    down.on('close', () => this.#onDownGone());
    down.on('error', () => this.#onDownGone());
  }

  /** Called by the sweep when deadlineMs has passed. */
  expire(): void {
    if (this.#st === St.Closed) return;
    const code = this.#deadlineCode;
    this.#o.hooks.rejected(code);
    if (this.#st === St.Head && !this.#buf) {
      this.#close();
      return;
    } // idle keep-alive: just close
    if (!this.#resStarted && !this.#downGone) this.#down.end(localResponse(code === 'request_timeout' ? 504 : 408, code, true));
    this.#finish(code === 'request_timeout' ? 504 : 408, code, false);
    this.#close(); // also drops the upstream connection mid-exchange, so a late answer has nowhere to go
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
    if (this.#st === St.Body) {
      this.#feedRequestBody(chunk, 0);
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
      if (this.#deadlineCode !== 'headers_timeout') {
        this.#deadlineCode = 'headers_timeout';
        this.deadlineMs = this.#o.nowMs() + this.#o.limits.headersTimeoutMs;
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
    if (headerValue(head, 'upgrade') !== undefined && head.method !== 'OPTIONS') {
      this.#refuse(501, 'upgrade_unsupported');
      return;
    }

    this.#startMs = this.#o.nowMs();
    this.#head = head;
    this.#keepAlive &&= wantsKeepAlive(head);
    this.#bytesIn = head.length;
    this.#bytesOut = 0;
    this.#status = 0;
    this.#resStarted = false;
    this.#resClosing = false;
    this.#retried = false;
    this.#deadlineCode = 'request_timeout';
    this.deadlineMs = this.#startMs + this.#o.limits.requestTimeoutMs;

    const plan = this.#o.hooks.plan(head);
    this.#context = plan.context;
    const rest = buf.length > head.length ? buf.subarray(head.length) : null;
    if (!plan.forward) {
      // A refused request with a body is answered and the connection closed rather than draining the body.
      const close = !this.#keepAlive || framing.kind !== 'none';
      this.#buf = rest;
      this.#write(localResponse(plan.status, plan.code, close));
      this.#status = plan.status;
      this.#finish(plan.status, plan.code, false);
      if (close) {
        this.#close(true);
        return;
      }
      this.#afterExchange();
      return;
    }
    this.#buf = null;
    // Request trailers are dropped (an empty trailer section is sent): they would reach the app unchecked.
    this.#reqFramer = framerFor(framing, true);
    this.#reqDone = this.#reqFramer === null;
    this.#firstHead = upstreamRequestHead(head, plan);
    this.#pending = [this.#firstHead];
    this.#st = this.#reqDone ? St.Await : St.Body;
    if (rest) {
      if (this.#st === St.Body) this.#feedRequestBody(rest, 0);
      else this.#buf = rest;
    }
    this.#o.pool.acquire(this, (err, conn) => this.#onLeased(err, conn));
    // Only while a body has nowhere to go: pausing costs two epoll_ctl calls, so the common case never does.
    if (!this.#conn && this.#st === St.Body) this.#pauseDown();
  }

  #feedRequestBody(buf: Buffer, start: number): void {
    const r = this.#reqFramer!.feed(buf, start);
    if (r.error) {
      this.#abort(400, 'bad_request');
      return;
    }
    this.#bytesIn += r.consumed;
    const kept = r.kept ?? r.consumed;
    if (kept > 0) this.#toUpstream(start === 0 && kept === buf.length ? buf : buf.subarray(start, start + kept));
    if (r.done) {
      if (r.kept !== undefined) this.#toUpstream(CRLF); // the empty trailer section that ends the body
      this.#reqDone = true;
      this.#st = St.Await;
      const rest = start + r.consumed;
      if (rest < buf.length) this.#buf = buf.subarray(rest);
    }
  }

  #toUpstream(part: Buffer): void {
    if (!this.#conn) {
      this.#pending.push(part);
      return;
    }
    if (!this.#conn.socket.write(part)) this.#pauseDown();
  }

  #onLeased(err: Error | null, conn?: UpstreamConn): void {
    if (this.#st === St.Closed || this.#downGone) {
      if (conn) this.#o.pool.release(conn);
      this.#close();
      return;
    }
    if (err || !conn) {
      this.#abort(isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL') ? 503 : 502, 'upstream_unavailable');
      return;
    }
    this.#conn = conn;
    const pending = this.#pending;
    this.#pending = [];
    const ok = conn.socket.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
    if (ok && this.#st === St.Body) this.#resumeDown();
  }

  // ---- upstream → downstream

  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void {
    if (conn !== this.#conn) return;
    if (this.#resFramer) {
      this.#feedResponseBody(chunk, 0);
      return;
    }
    let raw: Buffer = this.#resBuf ? Buffer.concat([this.#resBuf, chunk]) : chunk;
    this.#resBuf = raw;
    for (;;) {
      const r = parseHead(raw, 0, 'response', this.#o.responseLimits);
      if ('incomplete' in r) return;
      if ('rejected' in r) {
        this.#abort(502, 'bad_upstream_response');
        return;
      }
      const head = r.head;
      const rest: Buffer | null = raw.length > head.length ? raw.subarray(head.length) : null;
      if (head.status! < 200 && head.status !== 101) {
        // Interim responses (100 Continue, 103 Early Hints) pass through; the final one follows.
        this.#write(raw.subarray(0, head.length));
        this.#resBuf = rest;
        if (!rest) return;
        raw = rest;
        continue;
      }
      if (head.status === 101) {
        this.#abort(502, 'upgrade_unsupported');
        return;
      }
      const framing = responseFraming(head, this.#head!.method!);
      if (framing === 'bad_request') {
        this.#abort(502, 'bad_upstream_response');
        return;
      }
      this.#resBuf = null;
      this.#status = head.status!;
      this.#resStarted = true;
      const upstreamCloses = framing.kind === 'close' || wantsKeepAlive(head) === false;
      this.#resClosing = upstreamCloses;
      if (framing.kind === 'close') this.#keepAlive = false;
      const closing = !this.#keepAlive;
      // An HTTP/1.0 client keeps the connection only when told so (RFC 9112 section 9.3).
      const http10 = this.#head!.minor === 0;
      const headBytes = responseNeedsRewrite(head, closing, http10) ? downstreamResponseHead(raw.subarray(0, head.length), head, closing, http10) : raw.subarray(0, head.length);
      this.#bytesOut += headBytes.length;
      this.#resFramer = framerFor(framing);
      if (!this.#resFramer) {
        this.#write(headBytes);
        if (rest) this.#resClosing = true; // bytes after a bodiless response: do not trust this connection again
        this.#exchangeDone();
        return;
      }
      if (!rest) {
        this.#write(headBytes);
        return;
      }
      // Head and (part of) the body in one write: one TLS record, one syscall.
      const r2 = this.#resFramer.feed(rest, 0);
      if (r2.error) {
        this.#abort(502, 'bad_upstream_response');
        return;
      }
      const body = r2.consumed === rest.length ? rest : rest.subarray(0, r2.consumed);
      this.#bytesOut += body.length;
      this.#write(body.length === 0 ? headBytes : Buffer.concat([headBytes, body]));
      if (r2.done) {
        if (r2.consumed < rest.length) this.#resClosing = true;
        this.#exchangeDone();
      }
      return;
    }
  }

  #feedResponseBody(chunk: Buffer, start: number): void {
    const r = this.#resFramer!.feed(chunk, start);
    if (r.error) {
      this.#abort(502, 'bad_upstream_response');
      return;
    }
    if (r.consumed > 0) {
      const part = r.consumed === chunk.length ? chunk : chunk.subarray(start, start + r.consumed);
      this.#bytesOut += part.length;
      this.#write(part);
    }
    if (r.done) {
      if (start + r.consumed < chunk.length) this.#resClosing = true;
      this.#exchangeDone();
    }
  }

  onUpstreamDrain(): void {
    if (this.#st === St.Body) this.#resumeDown();
  }

  onUpstreamGone(conn: UpstreamConn, _error: Error | undefined): void {
    if (conn !== this.#conn) return;
    this.#conn = null;
    if (this.#resFramer instanceof UntilCloseFramer) {
      this.#resClosing = true;
      this.#exchangeDone();
      return;
    }
    // A reused keep-alive connection the upstream had just closed: replay once if nothing was answered yet.
    const method = this.#head?.method ?? '';
    if (!this.#resStarted && !this.#resBuf && conn.reused && !this.#retried && this.#reqDone && this.#reqFramer === null && IDEMPOTENT.has(method)) {
      this.#retried = true;
      this.#pending = [this.#firstHead!];
      this.#o.pool.acquire(this, (err, c) => this.#onLeased(err, c));
      return;
    }
    this.#abort(502, 'upstream_reset');
  }

  // ---- exchange end

  #exchangeDone(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) {
      if (this.#resClosing || !this.#reqDone) this.#o.pool.discard(conn);
      else this.#o.pool.release(conn);
    }
    this.#finish(this.#status, undefined, conn?.resumed ?? false);
    // Answered before its body was all read: the rest of the body would be parsed as the next request head.
    if (!this.#keepAlive || this.#downGone || !this.#reqDone) {
      this.#close(true);
      return;
    }
    this.#afterExchange();
  }

  #afterExchange(): void {
    this.#st = St.Head;
    this.#head = null;
    this.#resFramer = null;
    this.#reqFramer = null;
    this.#deadlineCode = 'idle_timeout';
    this.deadlineMs = this.#o.nowMs() + this.#o.limits.idleTimeoutMs;
    this.#resumeDown();
    if (this.#buf) this.#nextRequest();
  }

  #finish(status: number, error: string | undefined, resumed: boolean): void {
    const head = this.#head;
    if (!head) return;
    this.#o.hooks.done(
      {
        method: head.method!,
        target: head.target!,
        status,
        startMs: this.#startMs,
        endMs: this.#o.nowMs(),
        bytesIn: this.#bytesIn,
        bytesOut: this.#bytesOut,
        ...(error ? { error } : {}),
        upstreamResumed: resumed,
      },
      this.#context,
    );
    this.#head = null;
  }

  #refuse(status: number, code: string): void {
    this.#o.hooks.rejected(code);
    this.#write(localResponse(status, code, true));
    this.#close(true);
  }

  /** The exchange cannot complete: answer if nothing was sent yet, otherwise cut the connection. */
  #abort(status: number, code: string): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) this.#o.pool.discard(conn);
    if (!this.#resStarted && !this.#downGone) {
      this.#write(localResponse(status, code, true));
      this.#status = status;
    }
    this.#finish(this.#resStarted ? this.#status : status, code, false);
    this.#close(this.#resStarted === false);
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

  #write(b: Buffer): void {
    if (this.#downGone) return;
    if (!this.#down.write(b)) this.#conn?.socket.pause();
  }

  #onDownGone(): void {
    if (this.#downGone) return;
    this.#downGone = true;
    if (this.#st === St.Closed) return;
    // The caller left. If its request went out whole, let the response finish into the void so the pooled
    // upstream connection survives; otherwise the upstream connection cannot be reused.
    if (this.#conn && !this.#reqDone) {
      this.#o.pool.discard(this.#conn);
      this.#conn = null;
    }
    this.#conn?.socket.resume(); // nobody will send 'drain' any more
    if (!this.#conn && this.#st !== St.Await) this.#close();
    else if (!this.#conn && this.#pending.length === 0) this.#close();
  }

  #close(graceful = false): void {
    if (this.#st === St.Closed) return;
    this.#st = St.Closed;
    this.#buf = null;
    // Still leased: its exchange did not complete (timeout, client gone), so a late answer belongs to no one.
    if (this.#conn) this.#o.pool.discard(this.#conn);
    this.#conn = null;
    if (graceful && !this.#downGone) this.#down.end();
    else this.#down.destroy();
  }
}
