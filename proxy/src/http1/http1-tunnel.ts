// An upgraded connection after the app's 101: bytes both ways between the client and the detached upstream
// connection, back-pressure each way, an end of stream carried across as a half-close. A leg that breaks off (a
// reset, or gone before it finished both ways) and a tunnel this proxy cuts short (the drain deadline, the total
// timeout) end with a reset on both legs, as a TCP tunnel does (tcp-relay.ts): never a FIN that the far side would
// read as the end of what it was sent. Apart from the session because no HTTP is read from here on; the session
// keeps only the timeouts and the end of the record.
import { resetByteSocket } from '../listeners/socket-reset.js';
import type { UpstreamConn, UpstreamOwner } from '../upstream/connection-pool.js';
import type { Http1Downstream } from './http1-downstream.js';
import type { Http1Exchange } from './http1-exchange.js';

export class Http1Tunnel implements UpstreamOwner {
  readonly #client: Http1Downstream;
  readonly #ex: Http1Exchange;
  readonly #nowMs: () => number;
  /** Both directions are over: `graceful` when both sides finished sending (what is buffered is flushed first). */
  readonly #ended: (graceful: boolean) => void;
  /** Set by the first end() or abort(): the tunnel ends once, whichever ways to end it run after (see abort()). */
  #over = false;

  /** Takes over the exchange's upstream connection: the 101 and what followed it (ex.resBuf) go to the client. */
  constructor(client: Http1Downstream, ex: Http1Exchange, nowMs: () => number, ended: (graceful: boolean) => void) {
    this.#client = client;
    this.#ex = ex;
    this.#nowMs = nowMs;
    this.#ended = ended;
    const conn = ex.conn!;
    // Never pooled again, and no longer taking a pool slot: it may stay open for hours. Its events come here now.
    ex.pool!.detach(conn);
    conn.owner = this;
    client.started(ex, 101);
    // From here an end of stream from either side is a half-close: the other direction keeps flowing.
    client.socket.allowHalfOpen = true;
    conn.socket.allowHalfOpen = true;
    // The 101 head is not counted; what followed it is the upgraded protocol's first bytes.
    client.send(ex, ex.resBuf!, ex.resBuf!.length - ex.switchHeadBytes);
    ex.resBuf = null;
  }

  /**
   * `early` (what the client sent after its upgrade request, already the new protocol) to the app, then the client's
   * bytes flow, unless the app pushed back (its 'drain' resumes them). Called once the session routes the client's
   * bytes here: a mux stream delivers what it held inside resume().
   */
  start(early: Buffer | null): void {
    if (early && !this.fromClient(early)) return;
    this.#client.resume();
  }

  /** False: the app pushed back, the client is paused until its 'drain'. */
  fromClient(chunk: Buffer): boolean {
    const ex = this.#ex;
    ex.bytesIn += chunk.length;
    if (!ex.conn || ex.conn.socket.write(chunk)) return true;
    this.#client.pause();
    return false;
  }

  /** The client finished sending: the app's side is ended, the other way stays open. */
  clientEnded(): void {
    this.#ex.mark('downstream_closed');
    this.#ex.conn?.socket.end();
  }

  clientGone(): void {
    if (this.#over) return;
    this.#ex.mark('downstream_closed');
    const up = this.#ex.conn?.socket;
    // Both sides finished sending: the upstream flushes what it still holds and closes by itself.
    if (up?.readableEnded && up.writableEnded) return;
    // Otherwise the client's leg broke off (reset, its session gone, cut by this proxy): the app's leg is reset too.
    // Before 2026-12-06 it got a FIN, so a client's reset reached the app as the end of its upload (audit 38a F1).
    this.abort();
  }

  /** Both directions are over, or cut with a close (the stream idle timeout: nothing was moving). */
  end(graceful: boolean): void {
    if (this.#over) return;
    this.#over = true;
    this.#ex.closeConn();
    this.#ended(graceful);
  }

  /** Cut short (the drain deadline, the total timeout) or broken off: both legs are reset, neither is closed. */
  abort(): void {
    if (this.#over) return;
    // Over before the legs are reset: a TLS client socket (the edge's, an inbound caller's own connection) emits its
    // 'close' inside the reset, and the session's client-gone path comes back here through clientGone(). Until
    // 2026-12-07 that ran the end a second time: the upgraded gauge went one below per tunnel (audit 57c F1).
    this.#over = true;
    this.#ex.discardConn(true);
    resetByteSocket(this.#client.socket);
    this.#ended(false);
  }

  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void {
    if (conn !== this.#ex.conn) return;
    this.#ex.lastActivityMs = this.#nowMs();
    this.#client.send(this.#ex, chunk);
  }

  onUpstreamDrain(): void {
    this.#client.resume();
  }

  /** The app finished sending: the client's side is ended, the other way stays open. */
  onUpstreamEnd(conn: UpstreamConn): void {
    if (conn !== this.#ex.conn) return;
    this.#ex.mark('upstream_closed');
    if (!this.#client.gone) this.#client.socket.end();
  }

  onUpstreamGone(conn: UpstreamConn, error: Error | undefined): void {
    if (conn !== this.#ex.conn) return;
    this.#ex.conn = null;
    this.#ex.mark('upstream_closed');
    // A reset, or gone before it finished both ways (its session gone, a ban): the client's leg is reset, not ended.
    const s = conn.socket;
    if (error || !s.readableEnded || !s.writableEnded) this.abort();
    else this.end(this.#client.socket.readableEnded);
  }
}
