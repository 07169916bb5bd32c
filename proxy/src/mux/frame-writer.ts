// The frames one session writes in one event-loop turn, encoded in place: headers and payloads are copied into a
// slab that is carved per turn (as Node's own Buffer pool is), so a frame costs no Buffer of its own and a turn no
// concat; the turn's bytes leave as one view of the slab. A carved region is never written again (a write Node has
// not finished with still points at it); a full slab is replaced, not reused.
import { HEADER_BYTES, writeHeader, type FrameType } from './mux-frame.js';

/** A turn of a busy session (tens of small requests or answers) fits many times; a larger turn gets a larger slab. */
const SLAB_BYTES = 16 * 1024;

export class FrameWriter {
  #slab: Buffer | null = null;
  /** Where this turn's region starts in the slab. */
  #start = 0;
  /** Bytes of this turn so far. */
  #length = 0;

  get length(): number {
    return this.#length;
  }

  frame(type: FrameType, flags: number, code: number, stream: number, length: number): void {
    const slab = this.#room(HEADER_BYTES);
    writeHeader(slab, this.#start + this.#length, type, flags, code, stream, length);
    this.#length += HEADER_BYTES;
  }

  payload(b: Buffer): void {
    const slab = this.#room(b.length);
    b.copy(slab, this.#start + this.#length);
    this.#length += b.length;
  }

  /** The bytes since the last take (null: none): one turn's, or those of the turns a full socket held back. */
  take(): Buffer | null {
    if (this.#length === 0 || this.#slab === null) return null;
    const out = this.#slab.subarray(this.#start, this.#start + this.#length);
    this.#start += this.#length;
    this.#length = 0;
    return out;
  }

  /** Lets the slab go between turns (a quiet session keeps none); the next frame takes a new one. */
  release(): void {
    if (this.#length > 0) return;
    this.#slab = null;
    this.#start = 0;
  }

  /** Drops this turn's bytes and the slab (the session ended). */
  clear(): void {
    this.#length = 0;
    this.release();
  }

  /** The slab, with room for `n` more bytes of this turn (a new one holds what the turn has written so far). */
  #room(n: number): Buffer {
    const slab = this.#slab;
    if (slab !== null && this.#start + this.#length + n <= slab.length) return slab;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (this.#length + n)));
    if (slab !== null && this.#length > 0) slab.copy(next, 0, this.#start, this.#start + this.#length);
    this.#slab = next;
    this.#start = 0;
    return next;
  }
}
