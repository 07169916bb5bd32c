// Where the access log's batches go (stdout or a path), and its outages. A path is opened non-blocking, so a FIFO
// can block neither start-up (no reader yet: open(2) would wait for one) nor shutdown (a reader that stopped
// reading: a blocked write(2) would hold a thread-pool thread and close() past its bound). A failed write (the
// reader went away, a full disk) does not turn the log off for good: lines are dropped while it lasts, the
// destination is reopened every second, and the outage is reported once when it starts and once when it ends.
import { constants, fstatSync, openSync, statSync } from 'node:fs';
import { TesseraError } from '../../../common/errors.js';
import { FdWriter } from '../../../shared-io/fd-writer.js';
import type { Timers } from '../../../shared-io/timers.js';

/** An outage's start: lines are dropped from now on, until a write gets through again. */
export interface AccessLogProblem {
  /** 'stdout' or the path. */
  readonly destination: string;
  /** The errno code: ENXIO for a FIFO nobody has open for reading; EPIPE (its reader went away), ENOSPC, EIO… */
  readonly code: string;
}

/** An outage's end: a write got through again. */
export interface AccessLogResumed {
  readonly destination: string;
  /** Lines dropped since the outage began (the batch that failed included). */
  readonly droppedLines: number;
}

export interface AccessLogDestinationOptions {
  /** 'stdout' or a path. */
  readonly destination: string;
  readonly maxQueuedBytes: number;
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** How long after a failure (or a failed reopen) the destination is opened again. */
  readonly reopenMs: number;
  readonly onProblem?: (p: AccessLogProblem) => void;
  readonly onResume?: (r: AccessLogResumed) => void;
}

/** O_NONBLOCK: a FIFO without a reader fails open(2) with ENXIO at once; on a regular file it changes nothing. */
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

/** `path` opened for append without blocking; undefined for a FIFO nobody reads yet. Other failures throw. */
function openForAppend(path: string): number | undefined {
  try {
    return openSync(path, APPEND, 0o640);
  } catch (e) {
    // ENXIO also comes from a Unix socket's path: only a FIFO is waited for.
    if ((e as NodeJS.ErrnoException).code === 'ENXIO' && isFifo(path)) return undefined;
    throw e;
  }
}

function isFifo(path: string): boolean {
  try {
    return statSync(path).isFIFO();
  } catch {
    return false;
  }
}

export class AccessLogDestination {
  readonly #o: AccessLogDestinationOptions;
  /** Undefined during an outage (or after close): lines are dropped. */
  #writer: FdWriter | undefined;
  #reopen: unknown;
  #dropped = 0;
  /** `#dropped` when the current outage began; undefined while there is none. */
  #outageFrom: number | undefined;
  #closed = false;
  /** A regular file at start (appends of any size stay whole), not a pipe, tty or socket. */
  readonly isFile: boolean;

  /** Opens the destination; a path that cannot be opened fails here, at start-up (a FIFO without a reader does not). */
  constructor(o: AccessLogDestinationOptions) {
    this.#o = o;
    if (o.destination === 'stdout') {
      this.isFile = fstatSync(1).isFile();
      this.#attach(1);
      return;
    }
    let fd: number | undefined;
    try {
      fd = openForAppend(o.destination);
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_ACCESS_LOG_UNWRITABLE', `Cannot open access log ${o.destination}: ${(e as Error).message}`, { path: o.destination }, { cause: e });
    }
    this.isFile = fd !== undefined && fstatSync(fd).isFile();
    if (fd === undefined) this.#outage('ENXIO', 0);
    else this.#attach(fd);
  }

  /** Whether lines can be written now (during an outage they are only counted). */
  get open(): boolean {
    return this.#writer !== undefined;
  }

  /** Lines dropped: refused (outage, buffer full, closed), lost in a failed write, or not written by close(). */
  get dropped(): number {
    return this.#dropped;
  }

  drop(lines: number): void {
    this.#dropped += lines;
  }

  /** Queues a batch of `lines` lines; one not taken is counted as dropped, whole. */
  write(batch: Buffer, lines: number): void {
    if (this.#writer?.write(batch, lines) !== true) this.#dropped += lines;
  }

  /** Resolves once nothing waits to be written (at once during an outage). */
  idle(): Promise<void> {
    return this.#writer?.idle() ?? Promise.resolve();
  }

  /** Stops reopening; lets the writer finish within `timeoutMs`, counting what it did not write as dropped. */
  async close(timeoutMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reopen !== undefined) this.#o.timers.clearTimeout(this.#reopen);
    this.#reopen = undefined;
    const writer = this.#writer;
    this.#writer = undefined;
    if (writer) this.#dropped += await writer.close(timeoutMs);
  }

  #attach(fd: number): void {
    const writer: FdWriter = new FdWriter({
      fd,
      ownsFd: fd !== 1,
      maxQueuedBytes: this.#o.maxQueuedBytes,
      timers: this.#o.timers,
      onWritten: () => this.#written(),
      onError: (err, lost) => this.#failed(writer, err, lost),
    });
    this.#writer = writer;
  }

  #failed(writer: FdWriter, err: NodeJS.ErrnoException, lost: number): void {
    const from = this.#dropped;
    this.#dropped += lost;
    if (this.#writer !== writer) return;
    this.#writer = undefined;
    // The failed writer refuses everything; this releases its fd. Its successor never gets the rest of a batch
    // this one had begun, so no line is torn across the two.
    void writer.close(0);
    this.#outage(err.code ?? 'EIO', from);
  }

  /** Reported once per outage however many reopens and writes fail in it; then reopened every `reopenMs`. */
  #outage(code: string, droppedFrom: number): void {
    if (this.#outageFrom === undefined) {
      this.#outageFrom = droppedFrom;
      this.#o.onProblem?.({ destination: this.#o.destination, code });
    }
    this.#reopen = this.#o.timers.setTimeout(() => this.#tryReopen(), this.#o.reopenMs);
  }

  #tryReopen(): void {
    this.#reopen = undefined;
    if (this.#closed) return;
    // stdout is not ours to reopen: its next write is simply tried again.
    let fd: number | undefined = 1;
    if (this.#o.destination !== 'stdout') {
      try {
        fd = openForAppend(this.#o.destination);
      } catch {
        fd = undefined; // the directory went away, say: tried again, already reported
      }
    }
    if (fd === undefined) this.#reopen = this.#o.timers.setTimeout(() => this.#tryReopen(), this.#o.reopenMs);
    else this.#attach(fd);
  }

  /** The outage, if any, ends with the first batch written whole: a destination that opens may still fail writes. */
  #written(): void {
    if (this.#outageFrom === undefined) return;
    const droppedLines = this.#dropped - this.#outageFrom;
    this.#outageFrom = undefined;
    this.#o.onResume?.({ destination: this.#o.destination, droppedLines });
  }
}
