// Bytes a multiplexed stream or session holds for later (what a paused reader has not taken, what waits for the
// peer's window, the start of a frame not yet whole), kept in memory close to their count: flow control and the
// write backlog count bytes, so a piece held must not keep more alive than it carries. A small piece, or a view that
// would keep a much larger read alive, is copied into an accumulator at the tail, which grows by doubling (copying
// stays linear in the bytes, however finely they were cut); a large piece that fills at least half of its buffer
// is held as it is (bulk data is not copied). The order of the bytes is kept exactly.

/** Pieces of at least this many bytes that fill at least half of their buffer are held as they are. */
export const KEEP_BYTES = 4 * 1024;
/** An accumulator's smallest size, when more may follow. */
const FIRST_BYTES = 256;
/** An accumulator's largest (a paused stream's whole window fits in one); past it a new one starts. */
const MOST_BYTES = 64 * 1024;

export class ByteQueue {
  #pieces: Buffer[] = [];
  #bytes = 0;
  /** The tail piece while small pieces are copied into it (its first #fill bytes are theirs), else null. */
  #acc: Buffer | null = null;
  #fill = 0;

  /** Pieces held (what a reader is handed at most, one by one). */
  get length(): number {
    return this.#pieces.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Adds `b` at the tail; `more` is the most bytes that can still follow it (an accumulator grows no larger). */
  push(b: Buffer, more: number = MOST_BYTES): void {
    const n = b.length;
    if (n === 0) return;
    this.#bytes += n;
    if (n >= KEEP_BYTES && 2 * n >= b.buffer.byteLength) {
      this.#seal();
      this.#pieces.push(b);
      return;
    }
    if (this.#acc === null || this.#fill + n > this.#acc.length) this.#grow(n, more);
    b.copy(this.#acc!, this.#fill);
    this.#fill += n;
  }

  /** The first piece, or its first `max` bytes (the rest stays first); undefined when empty. */
  shift(max: number = Number.POSITIVE_INFINITY): Buffer | undefined {
    if (this.#pieces.length === 0) return undefined;
    // The open accumulator is first only when it is the only piece: handed on whole, or sealed and cut.
    const acc = this.#acc;
    if (acc !== null && this.#pieces[0] === acc) {
      if (this.#fill > max) this.#seal();
      else {
        const fill = this.#fill;
        this.clear();
        return acc.subarray(0, fill);
      }
    }
    const head = this.#pieces[0]!;
    if (head.length <= max) {
      this.#pieces.shift();
      this.#bytes -= head.length;
      return head;
    }
    this.#pieces[0] = head.subarray(max);
    this.#bytes -= max;
    return head.subarray(0, max);
  }

  /** Every piece, in order; the queue is left empty. */
  takeAll(): Buffer[] {
    this.#seal();
    const all = this.#pieces;
    this.clear();
    return all;
  }

  clear(): void {
    this.#pieces = [];
    this.#bytes = 0;
    this.#acc = null;
    this.#fill = 0;
  }

  /** An accumulator with room for `n` more bytes: the tail one twice as large (its bytes copied), or a new one. */
  #grow(n: number, more: number): void {
    if (this.#acc !== null && this.#fill + n > MOST_BYTES) this.#seal();
    const fill = this.#acc === null ? 0 : this.#fill;
    const need = fill + n;
    const next = Buffer.allocUnsafeSlow(Math.max(need, Math.min(Math.max(FIRST_BYTES, 2 * need), MOST_BYTES, need + Math.max(0, more))));
    if (this.#acc === null) this.#pieces.push(next);
    else {
      this.#acc.copy(next, 0, 0, fill);
      this.#pieces[this.#pieces.length - 1] = next;
    }
    this.#acc = next;
    this.#fill = fill;
  }

  /** The accumulator takes no more bytes: it stays in the queue as a view of what it holds. */
  #seal(): void {
    if (this.#acc === null) return;
    this.#pieces[this.#pieces.length - 1] = this.#acc.subarray(0, this.#fill);
    this.#acc = null;
  }
}
