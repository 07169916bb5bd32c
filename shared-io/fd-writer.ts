// Writes buffers to a file descriptor in order, one write(2) at a time on libuv's thread pool, so a slow disk or a
// full pipe never blocks the event loop. Bounded: a buffer that would queue more than `maxQueuedBytes` is refused,
// never held. Each buffer carries a count (the access log's lines), so the caller can say how much never arrived.
import { close as fsClose, write as fsWrite } from 'node:fs';
import type { Timers } from './timers.js';
import { settledWithin } from './bounded-wait.js';

export interface FdWriterOptions {
  readonly fd: number;
  readonly maxQueuedBytes: number;
  /** Whether close() closes the fd (false for stdout). */
  readonly ownsFd: boolean;
  /** Retries after EAGAIN (a non-blocking pipe that is full) run here. */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** A write failed (EAGAIN aside): what was queued is lost (`lostCount`) and every later write is refused. */
  readonly onError: (err: NodeJS.ErrnoException, lostCount: number) => void;
  /** A buffer was written whole (the access log learns from it that a destination that had failed works again). */
  readonly onWritten?: () => void;
}

interface Queued {
  buf: Buffer;
  readonly count: number;
}

/**
 * How long a full non-blocking pipe (stdout is one) is given before the write is tried again: from 1 ms, doubled
 * while it stays full, up to 64 ms. A reader that is only briefly behind is caught up with at once; one that stalls
 * costs a timer every 64 ms, not a spin.
 */
const EAGAIN_FIRST_RETRY_MS = 1;
const EAGAIN_MAX_RETRY_MS = 64;

export class FdWriter {
  readonly #o: FdWriterOptions;
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  #writing = false;
  #retry: unknown;
  #retryMs = EAGAIN_FIRST_RETRY_MS;
  #failed = false;
  #closed = false;
  /** close() ran while a write was in flight: the fd is closed when that write returns, not under it. */
  #closeWhenIdle = false;
  #idleWaiters: (() => void)[] = [];

  constructor(o: FdWriterOptions) {
    this.#o = o;
  }

  /** Queues `buf` behind earlier ones; false when refused (closed, failed, or over the bound). */
  write(buf: Buffer, count: number): boolean {
    if (this.#closed || this.#failed || this.#queuedBytes + buf.length > this.#o.maxQueuedBytes) return false;
    this.#queue.push({ buf, count });
    this.#queuedBytes += buf.length;
    if (!this.#writing) this.#next();
    return true;
  }

  /** Resolves once nothing waits to be written (at once if nothing does, or once a write has failed). */
  idle(): Promise<void> {
    if (this.#queue.length === 0 || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Refuses further writes and resolves once everything queued is written, or after `timeoutMs` (a destination
   * that takes nothing), with the sum of the counts of the buffers not written whole. Releases the fd.
   */
  async close(timeoutMs: number): Promise<number> {
    if (this.#closed) return 0;
    this.#closed = true;
    await settledWithin(this.idle(), timeoutMs, this.#o.timers);
    const unwritten = this.#discard();
    if (this.#retry !== undefined) {
      this.#o.timers.clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#writing = false;
    }
    if (this.#writing) this.#closeWhenIdle = true;
    else this.#release();
    return unwritten;
  }

  #next(): void {
    const head = this.#queue[0];
    if (!head) {
      this.#writing = false;
      this.#settle();
      return;
    }
    this.#writing = true;
    fsWrite(this.#o.fd, head.buf, 0, head.buf.length, null, (err, n) => this.#written(err, n));
  }

  #written(err: NodeJS.ErrnoException | null, n: number): void {
    // After close() nothing is queued: this was the write in flight.
    if (this.#closeWhenIdle) {
      this.#writing = false;
      this.#release();
      return;
    }
    if (err) {
      if (err.code === 'EAGAIN') {
        this.#retry = this.#o.timers.setTimeout(() => {
          this.#retry = undefined;
          this.#next();
        }, this.#retryMs);
        this.#retryMs = Math.min(this.#retryMs * 2, EAGAIN_MAX_RETRY_MS);
        return;
      }
      const lost = this.#discard();
      this.#failed = true;
      this.#writing = false;
      this.#settle();
      this.#o.onError(err, lost);
      return;
    }
    this.#retryMs = EAGAIN_FIRST_RETRY_MS;
    const head = this.#queue[0]!;
    this.#queuedBytes -= n;
    // A pipe may take part of a write: the rest goes next, before anything queued behind it.
    if (n < head.buf.length) head.buf = head.buf.subarray(n);
    else {
      this.#queue.shift();
      this.#o.onWritten?.();
    }
    this.#next();
  }

  /** Empties the queue; the sum of the counts of what it held. */
  #discard(): number {
    const counts = this.#queue.reduce((n, q) => n + q.count, 0);
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    return counts;
  }

  #settle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #release(): void {
    this.#closeWhenIdle = false;
    if (this.#o.ownsFd) fsClose(this.#o.fd, () => {});
  }
}
