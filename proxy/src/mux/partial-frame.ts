// The bytes of a frame that arrives over several reads, joined once it is whole: a frame sent a byte per TLS record
// costs work linear in its size, not a copy of everything held at each read, and while it is held it costs memory
// close to its own size, not a Buffer per read (byte-queue.ts copies small reads together).
import { ByteQueue } from './byte-queue.js';
import { FrameType, HEADER_BYTES } from './mux-frame.js';

export class PartialFrame {
  readonly #held = new ByteQueue();
  /** How many bytes the frame needs in all: its header, then header and payload once the header is in. */
  #needs = 0;

  /** What to parse: `chunk` alone, or what was held joined with it once that makes the frame whole; null while short. */
  take(chunk: Buffer): Buffer | null {
    const held = this.#held.bytes;
    if (held === 0) return chunk;
    if (held + chunk.length < this.#needs) {
      this.#held.push(chunk, this.#needs - held - chunk.length);
      return null;
    }
    const parts = this.#held.takeAll();
    parts.push(chunk);
    return Buffer.concat(parts, held + chunk.length);
  }

  /** Holds `rest`, the start of a frame not yet whole (a DATA header's length was checked against its bound). */
  hold(rest: Buffer): void {
    this.#needs = rest.length < HEADER_BYTES ? HEADER_BYTES : HEADER_BYTES + (rest[0] === FrameType.Data ? rest.readUInt32BE(8) : 0);
    this.#held.clear();
    this.#held.push(rest, this.#needs - rest.length);
  }
}
