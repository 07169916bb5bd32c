// One exchange's connection from a keep-alive pool (connection-pool.ts), as the Duplex a node:http client request
// writes to and reads from: a pooled connection to the upstream or a stream of a multiplexed session, leased for
// one exchange. Handed to node:http at once, as a socket that is still connecting: the request is counted against
// the pool's bound from the moment it asks, waits in the pool's queue past it, and what node:http writes meanwhile
// is held until the lease comes. node:http's 'free' (a complete keep-alive exchange) gives the connection back to the
// pool; an end (a close-delimited answer) or a destroy (an error, a deadline, the client gone) drops it, or, while
// still queued, withdraws the request from the queue at once.
import { Duplex } from 'node:stream';
import type { ConnectionPool, PoolWait, UpstreamConn, UpstreamOwner } from './connection-pool.js';
import { refusedUnprocessed } from './unprocessed-refusal.js';

type WriteDone = (err?: Error | null) => void;

/**
 * A reused keep-alive connection went before any byte of this exchange's answer: the upstream may have closed it as
 * the request went out (its idle timeout), so an idempotent request may go again, as the HTTP/1.1 paths send it.
 */
class StaleKeepAlive extends Error {
  readonly code = 'ECONNRESET';
}

/** Whether a request's error is a StaleKeepAlive (node:http hands the socket's error to the request as it is). */
export function staleKeepAlive(err: unknown): boolean {
  return err instanceof StaleKeepAlive;
}

export class LeaseSocket extends Duplex implements UpstreamOwner {
  readonly #pool: ConnectionPool;
  /** Queued or being dialed; null once leased, failed or withdrawn. */
  #wait: PoolWait | null = null;
  /** The leased connection while this exchange has it. */
  #conn: UpstreamConn | null = null;
  /** A write made before the lease came, or one the connection took past its high-water mark: done at 'drain'. */
  #held: { readonly chunk: Buffer; readonly done: WriteDone } | null = null;
  #drainDone: WriteDone | null = null;
  /** The connection is paused because this side's reader is full. */
  #pausedUpstream = false;
  /** A byte of the answer came. */
  #answered = false;
  #attached = false;

  constructor(pool: ConnectionPool) {
    super();
    this.#pool = pool;
    // node:http frees its socket after a complete keep-alive exchange (or one its request never used).
    this.once('free', () => this.#release());
    // node:http reports errors to the request while it holds this; once it has let go (an upgrade it was not asked
    // for), one here has nobody to tell, and its connection is already dropped.
    this.on('error', () => undefined);
  }

  /** Asks the pool for a connection (after node:http has its 'error' listener on this, which a refusal reaches). */
  lease(): void {
    const wait = this.#pool.acquire(this, (err, conn) => {
      this.#wait = null;
      if (err || !conn) return void this.destroy(err ?? new Error('connect failed'));
      // Not expected (a destroyed lease withdraws its wait), kept so that a stray connection is never lost.
      if (this.destroyed) return void this.#pool.release(conn);
      this.#attach(conn);
    });
    // Null when the pool answered at once (an idle connection, or a refusal): the callback above has run.
    if (wait) this.#wait = wait;
  }

  /** A connection was leased to this exchange (it may be gone since): a failure after it is not one to connect. */
  get attached(): boolean {
    return this.#attached;
  }

  #attach(conn: UpstreamConn): void {
    this.#attached = true;
    this.#conn = conn;
    const held = this.#held;
    this.#held = null;
    if (held) this.#write(conn, held.chunk, held.done);
  }

  #write(conn: UpstreamConn, chunk: Buffer, done: WriteDone): void {
    if (conn.socket.write(chunk)) done();
    else this.#drainDone = done;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: WriteDone): void {
    this.#send(chunk, done);
  }

  // A head and its body written together (node:http corks them) go as one write: one frame on a multiplexed stream.
  override _writev(chunks: { chunk: Buffer }[], done: WriteDone): void {
    this.#send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), done);
  }

  #send(chunk: Buffer, done: WriteDone): void {
    if (this.#conn) this.#write(this.#conn, chunk, done);
    else this.#held = { chunk, done };
  }

  override _read(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    this.#conn?.socket.resume();
  }

  /**
   * node:http ends its socket when the connection may carry nothing more (a close-delimited or `close` answer), and
   * waits for its 'close' to release the request (a net.Socket closes once both sides are done). Destroyed once
   * finished, so that it does (audit 58e F1: the request never said 'close').
   */
  override _final(done: WriteDone): void {
    this.#drop();
    this.once('finish', () => this.destroy());
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    if (this.#wait) this.#pool.withdraw(this.#wait);
    this.#wait = null;
    this.#drop();
    done(err);
  }

  onUpstreamData(conn: UpstreamConn, chunk: Buffer): void {
    // node:http stops reading once the answer is complete: bytes after it belong to no exchange (a broken upstream).
    if (this.listenerCount('data') === 0) return void this.destroy(new Error('unsolicited bytes after the answer'));
    this.#answered = true;
    if (this.push(chunk)) return;
    this.#pausedUpstream = true;
    conn.socket.pause();
  }

  onUpstreamDrain(): void {
    const done = this.#drainDone;
    this.#drainDone = null;
    done?.();
  }

  /** Out of the pool already: node:http sees an end of input (a close-delimited answer ends there) or the error. */
  onUpstreamGone(conn: UpstreamConn, error: Error | undefined): void {
    this.#conn = null;
    // What a request may be sent again after (a refusal unprocessed, a stale keep-alive connection) is said only
    // while no byte of the answer came: after one, the upstream processed it.
    if (this.#answered && refusedUnprocessed(error)) this.destroy(new Error('the upstream reset the stream after part of its answer', { cause: error }));
    else if (conn.reused && !this.#answered && !refusedUnprocessed(error)) this.destroy(new StaleKeepAlive('the upstream closed a reused keep-alive connection before answering', { cause: error }));
    else if (error) this.destroy(error);
    else this.push(null);
  }

  /** After a complete exchange: the connection goes back to the pool (the next queued request may take it now). */
  #release(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) this.#pool.release(conn); // resumes it if this side had paused it
    this.destroy();
  }

  /** The connection carries nothing more: closed (a multiplexed stream reset unless it ended both ways). */
  #drop(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) this.#pool.discard(conn);
  }
}
