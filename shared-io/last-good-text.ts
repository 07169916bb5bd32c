// A text file read again at each use, the last good content kept when a read fails or finds it empty: for files
// another process replaces while we run (the cluster CA the kubelet mounts, swapped atomically but read by path),
// where a failed read mid-swap must not stop the calls that need the file.

export class LastGoodText {
  #last: string;
  readonly #read: () => string;

  /** `first`: the content read at start (whose failure is the caller's to report); `read`: how to read it again. */
  constructor(first: string, read: () => string) {
    this.#last = first;
    this.#read = read;
  }

  /** The file's content now, or the last non-empty content read if it cannot be read or is empty. */
  read(): string {
    try {
      const now = this.#read();
      if (now.trim() !== '') this.#last = now;
    } catch {
      // Kept: the last content read is better than failing every call until the file is back.
    }
    return this.#last;
  }
}
