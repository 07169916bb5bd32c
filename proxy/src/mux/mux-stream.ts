// One stream of a multiplexed session, shaped like the socket it replaces: the HTTP/1.1 forwarder and the pool use
// write/end/destroy/pause/resume and the data/drain/end/close/error events, so a stream stands wherever a pooled
// keep-alive connection stood. Flow control is per stream: the peer may send at most the window this side granted,
// credit is returned only for bytes handed on, so a stream whose reader is paused holds at most one window and never
// stalls its siblings. Writing is the mirror: what the peer has no window for waits in the stream's queue, and a
// write that queues anything tells its writer to wait for 'drain' (as a full socket does); the queued bytes are
// reported to the session, which bounds their sum with its own backlog. Both queues hold their bytes in about
// their own size however finely the peer or the writer cut them (byte-queue.ts). Events after a local destroy are
// not emitted; 'close' comes on the next tick, as a socket's. A reset with NO_ERROR after the peer's FIN (a draining
// server's: RFC 9113 8.1) ends only what this side sends: what the peer sent is read to its end.
import { EventEmitter } from 'node:events';
import { ByteQueue } from './byte-queue.js';
import type { RunHolder } from './data-run.js';
import { Flag, MAX_WINDOW, MuxCode, STREAM_WINDOW } from './mux-frame.js';

/** What a stream needs from its session. */
export interface StreamPort {
  /** Queues DATA for `stream` (split into frames by the session) with `flags`. */
  data(stream: MuxStream, payload: Buffer | null, flags: number): void;
  windowUpdate(stream: MuxStream, increment: number): void;
  reset(stream: MuxStream, code: MuxCode): void;
  /** The stream is done both ways: forget its id. */
  forget(stream: MuxStream): void;
  /** Bytes are waiting for the TLS socket beyond its high-water mark. */
  readonly congested: boolean;
  /** The stream's queue (bytes the peer has no window for) grew or shrank by `delta` bytes. */
  queued(delta: number): void;
  /** A window overflow or other fault of the peer on this stream: the session ends with it. */
  fault(code: MuxCode, reason: string): void;
  /** A serving session going away: streams that said all they will say are reset (dropIfDone), not waited on. */
  readonly draining: boolean;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

export class MuxStreamError extends Error {
  readonly code: MuxCode;
  constructor(code: MuxCode, message: string) {
    super(message);
    this.code = code;
  }

  /** A REFUSED reset: the peer processed nothing of the stream (upstream/unprocessed-refusal.ts). */
  get unprocessed(): boolean {
    return this.code === MuxCode.Refused;
  }
}

/** Whether `chunk` starts an HTTP/1.x interim (1xx) response head: "HTTP/1.1 1" or "HTTP/1.0 1". */
function isInterimHead(chunk: Buffer): boolean {
  return chunk.length >= 10 && chunk[9] === 0x31 && chunk[8] === 0x20 && chunk.toString('latin1', 0, 7) === 'HTTP/1.';
}

export class MuxStream extends EventEmitter implements RunHolder {
  readonly id: number;
  readonly #port: StreamPort;
  /** This turn's plain DATA, joined by the session's DataRun (data-run.ts) before it reaches onData. */
  run: Buffer[] | null = null;
  runBytes = 0;
  /** Half-close as on a socket: false ends our side when the peer ends its own. */
  allowHalfOpen = false;
  /** Bytes the peer may still take (its grant). */
  #sendWindow = STREAM_WINDOW;
  /** Bytes the peer may still send us. */
  #recvWindow = STREAM_WINDOW;
  /** Bytes handed on and not yet credited back. */
  #consumed = 0;
  /** What waits for the peer's window (its bytes are counted in the session's backlog). */
  readonly #pendingOut = new ByteQueue();
  /** What the peer sent while the reader was paused: at most the window, in about its own size. */
  readonly #pendingIn = new ByteQueue();
  #needDrain = false;
  #resetByPeer = false;
  #paused = false;
  #finPending = false;
  #localEnded = false;
  #remoteEnded = false;
  /** The peer sent at least one byte on this stream (a stream it opens and ends empty made work for nothing). */
  #carried = false;
  /** We have written at least one byte on it (an answer, on a serving session). */
  #wrote = false;
  #endEmitted = false;
  #destroyed = false;

  /** The session has sent (dialer) or received (server) the SYN that opened it. */
  constructor(id: number, port: StreamPort) {
    super();
    this.id = id;
    this.#port = port;
  }

  /** Whether either side has sent any byte, and whether the peer has ended its side: what the flood budget reads. */
  get carried(): boolean {
    return this.#carried;
  }

  get wrote(): boolean {
    return this.#wrote;
  }

  /** The peer reset it (RST_STREAM), not the session's end: what the serving side counts as a cancellation. */
  get resetByPeer(): boolean {
    return this.#resetByPeer;
  }

  get remoteEnded(): boolean {
    return this.#remoteEnded;
  }

  get remoteAddress(): string | undefined {
    return this.#port.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#port.remotePort;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  get readableEnded(): boolean {
    return this.#endEmitted;
  }

  get writableEnded(): boolean {
    return this.#localEnded;
  }

  /** Bytes written and not yet sent for want of window. */
  get writableLength(): number {
    return this.#pendingOut.bytes;
  }

  /**
   * Its writer was told to wait for 'drain' (for window, or for the session's backed-up TLS socket): bytes wait to go
   * to the peer though none wait here. Read as a socket's is (unflushed()): a client the proxy paused for a congested
   * session was cut as a slow sender, 408 request_body_timeout (audit 62e F1).
   */
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  isPaused(): boolean {
    return this.#paused;
  }

  // ---- writing

  write(chunk: Buffer): boolean {
    if (this.#destroyed || this.#localEnded) return false;
    // An interim answer (`100 Continue`, written alone by the HTTP/1.1 layer) is no answer: a peer that ends the
    // stream after it has still made work for nothing.
    if (!this.#wrote && chunk.length > 0 && !isInterimHead(chunk)) this.#wrote = true;
    if (this.#pendingOut.length === 0 && chunk.length <= this.#sendWindow) {
      this.#send(chunk, 0);
      if (!this.#port.congested) return true;
    } else {
      const fits = Math.min(this.#sendWindow, chunk.length);
      if (this.#pendingOut.length === 0 && fits > 0) {
        this.#send(chunk.subarray(0, fits), 0);
        this.#queue(chunk.subarray(fits));
      } else this.#queue(chunk);
    }
    this.#needDrain = true;
    return false;
  }

  #queue(b: Buffer): void {
    this.#pendingOut.push(b);
    this.#port.queued(b.length);
  }

  /** Ends our side (FIN) once what was written has been sent. */
  end(): this {
    if (this.#destroyed || this.#localEnded) return this;
    this.#localEnded = true;
    if (this.#pendingOut.length > 0) this.#finPending = true;
    else this.#sendFin();
    return this;
  }

  /** Abandons the stream both ways (RST CANCEL unless it already ended cleanly). */
  destroy(_error?: Error): this {
    if (this.#destroyed) return this;
    const clean = this.#localEnded && !this.#finPending && this.#remoteEnded;
    if (!clean) this.#port.reset(this, MuxCode.Cancel);
    this.#teardown();
    return this;
  }

  #send(payload: Buffer, flags: number): void {
    this.#sendWindow -= payload.length;
    this.#port.data(this, payload, flags);
  }

  #sendFin(): void {
    this.#port.data(this, null, Flag.Fin);
    if (this.#port.draining) this.dropIfDone();
    this.#maybeDone();
  }

  /**
   * Only waiting for the peer's FIN: this side's FIN is sent, and its reader takes nothing more (not a half-open
   * tunnel: allowHalfOpen off). A draining server resets such a stream with NO_ERROR, as RFC 9113 8.1 lets a server
   * that sent its complete answer reset the rest of the request: the drain does not wait on a peer that never FINs.
   */
  dropIfDone(): void {
    if (this.#destroyed || !this.#localEnded || this.#finPending || this.#remoteEnded || this.allowHalfOpen) return;
    this.#port.reset(this, MuxCode.None);
    this.#teardown();
  }

  /**
   * Whether a credit of `increment` pays back bytes this side sent on the stream and the peer has not credited yet
   * (what an honest reader sends, having read them); a larger one grants window that no byte of ours spent.
   */
  repays(increment: number): boolean {
    return increment <= STREAM_WINDOW - this.#sendWindow;
  }

  /** The peer granted more window: send what waited for it, then FIN, then 'drain'. */
  onWindowUpdate(increment: number): void {
    if (this.#destroyed) return;
    if (this.#sendWindow + increment > MAX_WINDOW) {
      this.#port.fault(MuxCode.FlowControl, 'window update beyond 2^31-1');
      return;
    }
    this.#sendWindow += increment;
    let sent = 0;
    while (this.#pendingOut.length > 0 && this.#sendWindow > 0) {
      const part = this.#pendingOut.shift(this.#sendWindow)!;
      sent += part.length;
      this.#send(part, 0);
    }
    if (sent > 0) this.#port.queued(-sent);
    if (this.#pendingOut.length > 0) return;
    if (this.#finPending) {
      this.#finPending = false;
      this.#sendFin();
    }
    this.onSessionDrain();
  }

  /** The TLS socket took its backlog: a writer told to wait may go on. */
  onSessionDrain(): void {
    if (!this.#needDrain || this.#destroyed || this.#pendingOut.length > 0 || this.#port.congested) return;
    this.#needDrain = false;
    this.emit('drain');
  }

  // ---- reading

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    while (this.#pendingIn.length > 0 && !this.#paused && !this.#destroyed) this.#deliver(this.#pendingIn.shift()!);
    if (this.#pendingIn.length === 0) this.#maybeEnd();
    return this;
  }

  /** DATA from the peer: beyond the granted window is the peer's fault (the session ends). */
  onData(payload: Buffer): void {
    if (this.#destroyed || this.#remoteEnded) return;
    if (payload.length > this.#recvWindow) {
      this.#port.fault(MuxCode.FlowControl, `stream ${this.id} sent beyond its window`);
      return;
    }
    this.#recvWindow -= payload.length;
    this.#carried = true;
    // Held while paused, in memory close to the window it counts against (no more than the peer may still send).
    if (this.#paused || this.#pendingIn.length > 0) this.#pendingIn.push(payload, this.#recvWindow);
    else this.#deliver(payload);
  }

  #deliver(payload: Buffer): void {
    this.emit('data', payload);
    if (this.#destroyed || this.#remoteEnded) return;
    this.#consumed += payload.length;
    // Credit back in halves of the window: one WINDOW_UPDATE per 32 KiB read, not per frame.
    if (this.#consumed >= STREAM_WINDOW / 2) {
      const n = this.#consumed;
      this.#consumed = 0;
      this.#recvWindow += n;
      this.#port.windowUpdate(this, n);
    }
  }

  onFin(): void {
    if (this.#destroyed || this.#remoteEnded) return;
    this.#remoteEnded = true;
    this.#maybeEnd();
  }

  #maybeEnd(): void {
    if (!this.#remoteEnded || this.#endEmitted || this.#paused || this.#pendingIn.length > 0 || this.#destroyed) return;
    this.#endEmitted = true;
    this.emit('end');
    if (!this.allowHalfOpen) this.end();
    this.#maybeDone();
  }

  /** The peer abandoned the stream (RST, `byPeer`), or the session ended under it. */
  onReset(code: MuxCode, reason: string, byPeer = false): void {
    if (this.#destroyed) return;
    this.#resetByPeer = byPeer;
    if (code === MuxCode.None && this.#remoteEnded) this.#peerDone();
    else this.#teardown(new MuxStreamError(code, reason));
  }

  /**
   * A reset with NO_ERROR after the peer's FIN: it sent its whole answer and takes nothing more of ours (RFC 9113 8.1;
   * a draining Tessera server, dropIfDone). Nothing more is sent; what it sent is kept and read to its end (a client
   * must not discard such an answer), outside the session, which may end meanwhile.
   */
  #peerDone(): void {
    if (this.#pendingOut.bytes > 0) this.#port.queued(-this.#pendingOut.bytes);
    this.#pendingOut.clear();
    this.#localEnded = true;
    this.#finPending = false;
    this.#port.forget(this);
    if (this.#endEmitted) this.#teardown();
    else this.#maybeEnd();
  }

  #maybeDone(): void {
    if (this.#localEnded && !this.#finPending && this.#endEmitted && !this.#destroyed) this.#teardown();
  }

  #teardown(error?: Error): void {
    this.#destroyed = true;
    if (this.#pendingOut.bytes > 0) this.#port.queued(-this.#pendingOut.bytes);
    this.#pendingOut.clear();
    this.#pendingIn.clear();
    this.#port.forget(this);
    process.nextTick(() => {
      if (error && this.listenerCount('error') > 0) this.emit('error', error);
      this.emit('close', error !== undefined);
    });
  }
}
