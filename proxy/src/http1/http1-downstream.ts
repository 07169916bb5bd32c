// The client's connection as an Http1Session and its tunnel use it: reads paused only while bytes have nowhere to go,
// exchange bytes counted and written with back-pressure onto the upstream, nothing written once the client is gone,
// and whether the client is behind on reading what it was sent (`full`), which holds back its next request.
import type { ByteSocket } from './byte-socket.js';
import type { RefusalReason } from '../../../common/refusal-reasons.js';
import { type AddedResponseHeaders, addedResponseHeaders, localResponse } from './head-rewrite.js';
import type { Http1Exchange } from './http1-exchange.js';

/** Fits one TCP segment on any path (IPv4's minimum MSS is 536 bytes). */
const FIRST_WRITE_MAX = 512;

export class Http1Downstream {
  readonly socket: ByteSocket;
  /** Added to every response head sent on this connection, forwarded or local. */
  readonly added: AddedResponseHeaders | null;
  /** The connection may carry another exchange: the client asked for it, no close-delimited answer, no drain. */
  keepAlive = true;
  /** Closed or failed: nothing more is written to it. */
  gone = false;
  /**
   * A write was refused (the socket's, or a mux stream's, queue is past its high-water mark) and no 'drain' came
   * since: the client is not reading what it was sent, so the session reads and parses nothing more of it.
   */
  full = false;
  #paused = false;
  /** TCP_NODELAY is still to be set, before the next write unless it is a small first one (SessionOptions.plainTcpClient). */
  #noDelayDue: boolean;
  #wrote = false;

  constructor(socket: ByteSocket, responseHeaders: Readonly<Record<string, string>> | undefined, plainTcp = false) {
    this.socket = socket;
    this.added = addedResponseHeaders(responseHeaders);
    this.#noDelayDue = plainTcp;
  }

  /** Only while bytes have nowhere to go: pausing costs two epoll_ctl calls, so the common case never does. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  /**
   * Bytes of the exchange to the client, `counted` of them content (bytesOut: not a head, chunk framing or
   * trailers). A full socket pauses the upstream, if any, until 'drain', and (`full`) the session's reading of the
   * next request: a local answer has no upstream to pause.
   */
  send(ex: Http1Exchange, b: Buffer, counted = b.length): void {
    if (this.gone) return;
    ex.bytesOut += counted;
    if (this.#noDelayDue) this.#beforeWrite(b.length);
    if (this.socket.write(b)) return;
    this.full = true;
    ex.conn?.socket.pause();
  }

  /** Bytes outside any exchange (a refusal of an unreadable head, a timeout's 408). */
  write(b: Buffer): void {
    if (this.gone) return;
    if (this.#noDelayDue) this.#beforeWrite(b.length);
    if (!this.socket.write(b)) this.full = true;
  }

  /** Nagle could hold a write only once something is in flight: a small first write (one segment) goes at once. */
  #beforeWrite(length: number): void {
    if (this.#wrote || length > FIRST_WRITE_MAX) {
      this.#noDelayDue = false;
      this.socket.setNoDelay?.(true);
    }
    this.#wrote = true;
  }

  /** Everything written so far is in the kernel (none held in the socket's own buffer). */
  get flushed(): boolean {
    return this.socket.writableLength === 0;
  }

  /** The final response head goes to the client now: its status is what the exchange is recorded with. */
  started(ex: Http1Exchange, status: number): void {
    if (!this.gone) ex.status = status; // otherwise nothing is sent: the record keeps 499
    ex.resStarted = true;
  }

  /** A response the proxy answers itself, with this connection's added headers; bodiless to a HEAD request. */
  local(status: number, code: RefusalReason, close: boolean, method?: string): Buffer {
    return localResponse(status, code, close, this.added, method === 'HEAD');
  }

  /** The proxy's own answer to the exchange: sent, not counted (bytesOut is what the upstream sent, as on HTTP/2). */
  sendLocal(ex: Http1Exchange, status: number, code: RefusalReason, close: boolean, method?: string): void {
    this.send(ex, this.local(status, code, close, method), 0);
  }
}
