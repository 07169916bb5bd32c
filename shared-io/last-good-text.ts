// A text file read again at each use, the last good content kept when a read fails or finds it empty: for files
// another process replaces while we run (the cluster CA the kubelet mounts, swapped atomically but read by path),
// where a failed read mid-swap must not stop the calls that need the file. Kept quietly, a file gone for good
// would go unnoticed while the old content is used for ever: each change between good and failing reads is told
// once (not per call), with the failure's cause.
import { describeError } from '../common/errors.js';

export interface LastGoodTextEvents {
  /** A read failed or found the file empty after good ones (or since start): the last good content stays in use. */
  stale(cause: string): void;
  /** The first good read after failing ones. */
  fresh(): void;
}

export class LastGoodText {
  #last: string;
  #stale = false;
  readonly #read: () => string;
  readonly #events: LastGoodTextEvents | undefined;

  /** `first`: the content read at start (whose failure is the caller's to report); `read`: how to read it again. */
  constructor(first: string, read: () => string, events?: LastGoodTextEvents) {
    this.#last = first;
    this.#read = read;
    this.#events = events;
  }

  /** The file's content now, or the last non-empty content read if it cannot be read or is empty. */
  read(): string {
    let now: string;
    try {
      now = this.#read();
    } catch (e) {
      // Kept: the last content read is better than failing every call until the file is back.
      this.#failed(describeError(e));
      return this.#last;
    }
    if (now.trim() === '') {
      this.#failed('the file is empty');
      return this.#last;
    }
    this.#last = now;
    if (this.#stale) {
      this.#stale = false;
      this.#events?.fresh();
    }
    return now;
  }

  #failed(cause: string): void {
    if (this.#stale) return;
    this.#stale = true;
    this.#events?.stale(cause);
  }
}
