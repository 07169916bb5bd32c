// One downstream HTTP/1.1 connection through the lean forwarder: heads are parsed and rewritten, bodies stream
// through untouched in both directions with backpressure, requests are answered in order over pooled upstream
// connections, and an allowed upgrade becomes a byte stream both ways. No node:http objects on this path: it is
// the proxy's hot loop. This file is the connection's state machine and timeouts; the state of the request in
// flight lives in its Http1Exchange, made per request by http1-request-admission.ts, its answer is read by
// http1-response.ts, an upgraded connection is relayed by http1-tunnel.ts, the client socket is Http1Downstream.
import { isTesseraError } from '../../../common/errors.js';
import { cutStatus, type RefusalReason } from '../../../common/refusal-reasons.js';
import { connectFailureReason } from '../routing/exchange-route.js';
import type { UpstreamConn, UpstreamOwner } from '../upstream/connection-pool.js';
import { UntilCloseFramer } from './body-framer.js';
import type { ByteSocket } from './byte-socket.js';
import { Http1Downstream } from './http1-downstream.js';
import type { ExchangeFlag, Http1Exchange } from './http1-exchange.js';
import { admitRequest } from './http1-request-admission.js';
import { type ResponseStep, readResponseHead, relayResponseBody } from './http1-response.js';
import { St } from './http1-session-state.js';
import type { SessionOptions } from './http1-session-types.js';
import { Http1Tunnel } from './http1-tunnel.js';
import { intoTheVoid } from './void-deadline.js';

export class Http1Session implements UpstreamOwner {
  readonly #client: Http1Downstream;
  readonly #o: SessionOptions;
  #st: St = St.Head;
  /** Bytes read from the client and not yet parsed (a partial or pipelined head). */
  #buf: Buffer | null = null;
  #ex: Http1Exchange | null = null;
  /** Set while St.Tunnel: it owns the upstream connection's events. */
  #tunnel: Http1Tunnel | null = null;
  /** Between exchanges: when the wait for the next head ends, and what it is called. */
  #waitDeadlineMs: number;
  /** After a graceful close: when a client that has not taken its last answer is let go (0: not waiting). */
  #lingerUntilMs = 0;
  #waitCode: 'headers_timeout' | 'idle_timeout' = 'idle_timeout';
  /** The client said its last request was its last (`Connection: close`, or HTTP/1.0 without keep-alive). */
  #clientClosing = false;

  constructor(down: ByteSocket, opts: SessionOptions) {
    this.#client = new Http1Downstream(down, opts.responseHeaders, opts.plainTcpClient);
    this.#o = opts;
    if (opts.firstHeadTimeout) this.#waitCode = 'headers_timeout';
    this.#waitDeadlineMs = opts.nowMs() + (opts.firstHeadTimeout ? opts.limits.headersTimeoutMs : opts.limits.idleTimeoutMs);
    down.on('data', (c: Buffer) => this.#onDownData(c));
    down.on('drain', () => this.#onDrain());
    down.on('end', () => this.#onDownEnd());
    down.on('close', () => this.#onDownGone());
    down.on('error', () => this.#onDownGone());
  }

  /**
   * When the current wait ends (checked by the listener's sweep): between requests the headers or idle timeout;
   * during an exchange the earliest of request timeout (until the response head), total timeout and stream idle.
   */
  get deadlineMs(): number {
    if (this.#st === St.Closed) return this.#lingerUntilMs;
    return this.#ex ? this.#ex.deadlineMs(this.#o.limits.streamIdleTimeoutMs) : this.#waitDeadlineMs;
  }

  /** Called by the sweep when deadlineMs has passed. */
  expire(): void {
    if (this.#st === St.Closed) {
      // Ended gracefully, but the client has not taken the last answer within the idle timeout: let it go.
      if (this.#lingerUntilMs === 0 || this.#o.nowMs() < this.#lingerUntilMs) return;
      this.#lingerUntilMs = 0;
      this.#o.hooks.rejected('idle_timeout');
      this.#client.socket.destroy();
      return;
    }
    const now = this.#o.nowMs();
    const ex = this.#ex;
    if (!ex) {
      if (now < this.#waitDeadlineMs) return;
      this.#o.hooks.rejected(this.#waitCode);
      // Idle keep-alive: just close. A head that stalls gets its 408, and the connection is destroyed, not
      // ended: a client that never closes its side must not keep the descriptor.
      if (this.#st !== St.Head || this.#buf) this.#client.write(this.#client.local(408, this.#waitCode, true));
      this.#close();
      return;
    }
    const flag = ex.expiredAt(now, this.#o.limits.streamIdleTimeoutMs);
    if (!flag) return;
    this.#o.hooks.rejected(flag);
    ex.mark(flag, this.#client.full);
    if (this.#tunnel) return void (flag === 'total_timeout' ? this.#tunnel.abort() : this.#tunnel.end(false));
    // Before the head: 408 while the client's own body stalls, 504 when the upstream is the slow one or holds the
    // body back (mark: heldUpstream; cutStatus, as HTTP/2 decides it). Destroyed after the answer, as above.
    this.#abort(ex, cutStatus(flag, ex.reqDone, ex.heldUpstream), flag, true);
  }

  /** Graceful drain: close now if idle between requests, otherwise after the exchange in flight. */
  drain(): void {
    this.#client.keepAlive = false;
    if (this.#st === St.Head && !this.#buf) this.#close();
  }

  /** The drain deadline passed: the exchange in flight (a tunnel too) is recorded now as cut (drain_timeout), then destroyed. */
  cut(): void {
    const ex = this.#ex;
    if (ex && this.#st !== St.Closed) {
      ex.mark('drain_timeout');
      if (this.#tunnel) return void this.#tunnel.abort();
      ex.discardConn();
      this.#finish(ex, undefined);
    }
    this.#close();
  }

  /** Closed, and not waiting for a client to take its last answer (#lingerUntilMs). */
  get closed(): boolean {
    return this.#st === St.Closed && this.#lingerUntilMs === 0;
  }

  // ---- downstream → upstream

  #onDownData(chunk: Buffer): void {
    const ex = this.#ex;
    if (ex) ex.lastActivityMs = this.#o.nowMs();
    if (this.#tunnel) return void this.#tunnel.fromClient(chunk);
    if (this.#st === St.Body) {
      this.#feedRequestBody(ex!, chunk, 0);
      return;
    }
    if (this.#st === St.Closed) return;
    this.#buf = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    if (this.#st === St.Head) this.#nextRequest();
    if (this.#holdsTooMuch()) this.#client.pause(); // pipelined: wait our turn
  }

  /**
   * Parses and starts the next request in #buf. A loop rather than recursion through #exchangeDone: a run of pipelined
   * requests answered here (403, 404, …) is read in one pass, whatever its length, the stack no deeper per request.
   */
  #nextRequest(): void {
    const client = this.#client;
    for (;;) {
      const buf = this.#buf;
      // Between exchanges only: a mux stream's resume() delivers what it held at once, and those bytes may have
      // started an exchange from inside the very call (#betweenExchanges) that returns here.
      if (!buf || this.#st !== St.Head) return;
      // The client has not read what it was sent: nothing more of it is read or parsed until it has (#onDrain).
      // Otherwise a caller that pipelines requests answered here and never reads would have every answer queued:
      // memory per connection would grow with what it sends.
      if (client.full) {
        client.pause();
        return;
      }
      const a = admitRequest(buf, this.#o);
      if (a === 'incomplete') {
        if (this.#waitCode !== 'headers_timeout') {
          this.#waitCode = 'headers_timeout';
          this.#waitDeadlineMs = this.#o.nowMs() + this.#o.limits.headersTimeoutMs;
        }
        return;
      }
      if ('rejected' in a) {
        // The head may not have parsed, but a request line starting "HEAD " asked for no body either way.
        this.#refuse(a.status, a.rejected, buf.length >= 5 && buf.toString('latin1', 0, 5) === 'HEAD ' ? 'HEAD' : undefined);
        return;
      }
      const { ex, rest, answer } = a;
      client.keepAlive &&= a.keepAlive;
      if (!a.keepAlive) this.#clientClosing = true;
      this.#ex = ex;
      if (!answer) {
        this.#forward(ex, rest);
        return;
      }
      if (answer.code === 'upgrade_unsupported') this.#o.hooks.rejected(answer.code);
      const close = !client.keepAlive || answer.close;
      this.#buf = rest;
      client.sendLocal(ex, answer.status, answer.code, close, ex.head.method);
      ex.status = answer.status;
      const now = this.#o.nowMs();
      this.#finish(ex, answer.code, now);
      // A refused request's unread body (answer.close) or bytes after it: closed gracefully, the client may still send.
      if (close) {
        this.#close(true, this.#clientClosing && !answer.close && !rest);
        return;
      }
      this.#betweenExchanges(now);
    }
  }

  /** The admitted request goes upstream: its body (what of it followed the head) too, a connection leased. */
  #forward(ex: Http1Exchange, rest: Buffer | null): void {
    const client = this.#client;
    // Only an exchange with a total gets a timer (and this closure): none on the plain hot path.
    if (ex.totalDeadlineMs !== Number.POSITIVE_INFINITY) ex.armTotal(this.#o.timers, this.#o.nowMs, () => this.#ex === ex && this.#st !== St.Closed && this.expire());
    this.#buf = null;
    if (ex.reqDone) this.#requestComplete(ex, ex.startMs);
    else this.#st = St.Body;
    if (rest) {
      if (this.#st === St.Body) this.#feedRequestBody(ex, rest, 0);
      else this.#buf = rest;
    }
    if (this.#st === St.Closed) return;
    const idle = ex.pool!.takeIdle(this);
    if (idle) this.#onLeased(ex, null, idle);
    else ex.lease(this, (err, conn) => this.#onLeased(ex, err, conn));
    // Only while a body has nowhere to go: the common case never pauses.
    if (!ex.conn && this.#st === St.Body) client.pause();
  }

  /** The whole request is read: from now the upstream has limits.requestTimeout (or its route's) to send the head. */
  #requestComplete(ex: Http1Exchange, now: number): void {
    ex.reqDone = true;
    ex.headDeadlineMs = now + ex.requestTimeoutMs;
    this.#st = St.Await;
  }

  #feedRequestBody(ex: Http1Exchange, buf: Buffer, start: number): void {
    const r = ex.reqFramer!.feed(buf, start);
    if (r.error) {
      this.#abort(ex, r.error === 'trailers_too_large' ? 431 : 400, r.error === 'trailers_too_large' ? 'header_too_large' : 'bad_request');
      return;
    }
    ex.bodyReceived(r.data ?? r.consumed); // content: a chunked body's sizes and trailers are not counted
    const kept = r.kept ?? r.consumed;
    if (kept > 0) this.#toUpstream(ex, start === 0 && kept === buf.length ? buf : buf.subarray(start, start + kept));
    if (r.done) {
      if (r.tail !== undefined) this.#toUpstream(ex, r.tail); // the (empty) trailer section that ends the body
      this.#requestComplete(ex, ex.lastActivityMs);
      const rest = start + r.consumed;
      if (rest < buf.length) this.#buf = buf.subarray(rest);
    }
  }

  #toUpstream(ex: Http1Exchange, part: Buffer): void {
    if (!ex.toUpstream(part)) this.#client.pause();
  }

  #onLeased(ex: Http1Exchange, err: Error | null, conn?: UpstreamConn): void {
    if (this.#ex !== ex || this.#st === St.Closed) {
      // Not expected (an ended exchange withdraws its wait: discardConn); kept so a stray lease is never lost.
      if (conn) ex.pool!.release(conn);
      return;
    }
    if (err || !conn) {
      if (ex.tryRetry(connectFailureReason(err))) {
        this.#nextAttempt(ex);
        return;
      }
      this.#abort(ex, isTesseraError(err, 'TESSERA_ERR_UPSTREAM_QUEUE_FULL') ? 503 : 502, 'upstream_unavailable');
      return;
    }
    ex.route?.dispatched();
    if (ex.leased(conn) && this.#st === St.Body) this.#client.resume();
  }

  // ---- upstream → downstream (after a 101 the Http1Tunnel gets these instead)

  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void {
    const ex = this.#ex;
    if (!ex || conn !== ex.conn) return;
    const now = this.#o.nowMs();
    ex.lastActivityMs = now;
    // Past the total nothing more of the answer goes on, even if its timer has not run yet in this turn of the loop.
    if (now >= ex.totalDeadlineMs) return void this.expire();
    this.#step(ex, ex.resFramer ? relayResponseBody(ex, chunk, this.#client) : readResponseHead(ex, chunk, this.#client, this.#o.responseLimits));
  }

  #step(ex: Http1Exchange, step: ResponseStep): void {
    if (step === 'done') this.#exchangeDone(ex);
    else if (step === 'bad') this.#badResponse(ex);
    else if (step === 'switch') this.#startTunnel(ex);
    else if (step === 'give_up') this.#giveUp(ex);
    else if (step === 'retry') {
      ex.discardConn();
      this.#nextAttempt(ex);
    }
  }

  /** Starts the attempt a retry chose (ex.next), after its backoff (the route chose none that would end past the total). */
  #nextAttempt(ex: Http1Exchange): void {
    const { delayMs } = ex.startNext();
    const go = () => {
      if (this.#ex !== ex || this.#st === St.Closed) return;
      ex.lease(this, (err, c) => this.#onLeased(ex, err, c));
    };
    if (delayMs > 0 && this.#o.schedule) this.#o.schedule(delayMs, go);
    else go();
  }

  onUpstreamDrain(): void {
    if (this.#st === St.Body) this.#client.resume();
  }

  /** The client read what was queued for it: the upstream goes on, or (between exchanges) the next request. */
  #onDrain(): void {
    const client = this.#client;
    client.full = false;
    const ex = this.#ex;
    if (ex) ex.conn?.socket.resume();
    else if (this.#st === St.Head) {
      if (!this.#holdsTooMuch()) client.resume();
      this.#nextRequest();
    }
  }

  onUpstreamGone(conn: UpstreamConn, error: Error | undefined): void {
    const ex = this.#ex;
    if (!ex || conn !== ex.conn) return;
    ex.conn = null;
    if (ex.resFramer instanceof UntilCloseFramer) {
      ex.resClosing = true;
      return void this.#exchangeDone(ex);
    }
    if (ex.replayAfter(conn, error, this.#o.nowMs())) return void ex.lease(this, (err, c) => this.#onLeased(ex, err, c));
    // Nothing of the answer arrived: a balanced request that may go twice goes to another endpoint.
    if (!ex.resBuf && ex.tryRetry('reset')) return void this.#nextAttempt(ex);
    ex.mark('upstream_closed');
    this.#abort(ex, 502, 'upstream_reset');
  }

  /** Not valid HTTP: before anything final went out, a request that may go twice goes elsewhere, as after a reset. */
  #badResponse(ex: Http1Exchange): void {
    if (!ex.tryRetry('bad_response')) return void this.#abort(ex, 502, 'bad_upstream_response');
    ex.discardConn();
    this.#nextAttempt(ex);
  }

  /** The app switched protocols: the connection becomes bytes both ways until either side ends it. */
  #startTunnel(ex: Http1Exchange): void {
    this.#st = St.Tunnel;
    this.#o.hooks.upgraded?.(1);
    const early = this.#buf; // what the client sent after its upgrade request belongs to the new protocol
    this.#buf = null;
    this.#tunnel = new Http1Tunnel(this.#client, ex, this.#o.nowMs, (graceful) => {
      this.#tunnel = null;
      this.#o.hooks.upgraded?.(-1);
      this.#finish(ex, undefined);
      this.#close(graceful);
    });
    this.#tunnel.start(early);
  }

  // ---- exchange end

  #exchangeDone(ex: Http1Exchange): void {
    ex.releaseConn();
    // One clock read for the record and the next idle deadline.
    const now = this.#o.nowMs();
    this.#finish(ex, undefined, now);
    // Answered before its body was all read: the rest of the body would be parsed as the next request head.
    if (!this.#client.keepAlive || this.#client.gone || !ex.reqDone) {
      // A client that asked to close and sent nothing more expects the close: no need to wait for its FIN.
      this.#close(true, this.#clientClosing && ex.reqDone && !this.#buf);
      return;
    }
    this.#betweenExchanges(now);
    if (this.#buf) this.#nextRequest();
  }

  /** Waiting for the next head, within the idle timeout; a client behind on reading stays paused until 'drain'. */
  #betweenExchanges(now: number): void {
    this.#st = St.Head;
    this.#waitCode = 'idle_timeout';
    this.#waitDeadlineMs = now + this.#o.limits.idleTimeoutMs;
    if (!this.#client.full && !this.#holdsTooMuch()) this.#client.resume();
  }

  /** Pipelined bytes held past maxHeaderBytes: not read on (a read, ≤ 64 KiB, per answer grew #buf: audit 34a F1). */
  #holdsTooMuch(): boolean {
    return this.#buf !== null && this.#buf.length > this.#o.limits.maxHeaderBytes;
  }

  #finish(ex: Http1Exchange, error: RefusalReason | undefined, now = this.#o.nowMs()): void {
    if (this.#ex !== ex) return;
    this.#ex = null;
    ex.clearTotal();
    this.#o.hooks.done(ex.record(now, error), ex.context);
  }

  #refuse(status: number, code: RefusalReason, method?: string): void {
    this.#o.hooks.rejected(code);
    this.#client.write(this.#client.local(status, code, true, method));
    this.#close(true);
  }

  /** The exchange cannot complete: answer if nothing was sent yet, otherwise cut the connection (`cut`: always). */
  #abort(ex: Http1Exchange, status: number, code: RefusalReason, cut = false): void {
    ex.discardConn();
    if (!ex.resStarted && !this.#client.gone) {
      this.#client.sendLocal(ex, status, code, true, ex.head.method);
      ex.status = status;
    }
    this.#finish(ex, code);
    this.#close(!ex.resStarted && !cut);
  }

  /** The client finished sending: a half-close on an upgraded connection, otherwise the client is gone. */
  #onDownEnd(): void {
    if (this.#tunnel) this.#tunnel.clientEnded(); else this.#onDownGone();
  }

  #onDownGone(): void {
    const client = this.#client;
    if (client.gone) return;
    client.gone = true;
    this.#lingerUntilMs = 0;
    if (this.#st === St.Closed) return;
    if (this.#tunnel) {
      this.#tunnel.clientGone();
      return;
    }
    const ex = this.#ex;
    if (ex) {
      ex.mark('downstream_closed');
      // The caller left mid-exchange: a small or pending answer is read into the void (intoTheVoid), or given up.
      const limits = { streamIdleTimeoutMs: this.#o.limits.streamIdleTimeoutMs, voidMs: this.#o.limits.requestTimeoutMs };
      if (!intoTheVoid(ex, limits, this.#o, () => this.#ex === ex && this.#st !== St.Closed, (flag) => this.#giveUp(ex, flag))) this.#giveUp(ex);
      return;
    }
    this.#close();
  }

  /** The client is gone and the rest of the answer is not worth reading (or passed `deadline`): record, drop, close. */
  #giveUp(ex: Http1Exchange, deadline?: ExchangeFlag): void {
    if (deadline) this.#o.hooks.rejected(deadline);
    ex.discardConn(ex.upgrade !== null); // an upgrade's app leg is reset: its client left mid-exchange (intoTheVoid)
    this.#finish(ex, undefined);
    this.#close();
  }

  /** `clientDone`: the client asked to close and all its bytes were read (see SessionOptions.plainTcpClient). */
  #close(graceful = false, clientDone = false): void {
    if (this.#st === St.Closed) return;
    this.#st = St.Closed;
    this.#buf = null;
    // Still leased: its exchange did not complete, so a late answer belongs to no one.
    this.#ex?.discardConn();
    this.#ex?.clearTotal();
    const client = this.#client;
    if (!graceful || client.gone) client.socket.destroy();
    else if (clientDone && this.#o.plainTcpClient && client.flushed) client.socket.destroy();
    else {
      client.socket.end();
      // end() waits for the client to read what is queued; one that never does would keep its connection (and
      // its place under maxConnections) for ever: the sweep cuts it at the idle timeout (expire()).
      this.#lingerUntilMs = this.#o.nowMs() + this.#o.limits.idleTimeoutMs;
      // A lingering close: what the client still sends (the rest of a body answered early, a 502 or a 403 before
      // it was read) is read and dropped. Left paused, a client blocked writing that body would never read the
      // close, and its next request, queued behind it on its connection, would wait until the idle timeout.
      if (client.socket.isPaused()) client.socket.resume();
    }
  }
}
