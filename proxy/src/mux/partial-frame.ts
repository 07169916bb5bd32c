// The bytes of a frame that arrives over several reads, joined once it is whole: a frame sent a byte per TLS record
// costs work linear in its size, not a copy of everything held at each read.
import { FrameType, HEADER_BYTES } from './mux-frame.js';

export class PartialFrame {
  #parts: Buffer[] = [];
  #bytes = 0;
  /** How many bytes the frame needs in all: its header, then header and payload once the header is in. */
  #needs = 0;

  /** What to parse: `chunk` alone, or what was held joined with it once that makes the frame whole; null while short. */
  take(chunk: Buffer): Buffer | null {
    if (this.#bytes === 0) return chunk;
    this.#parts.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes < this.#needs) return null;
    const whole = Buffer.concat(this.#parts, this.#bytes);
    this.#parts = [];
    this.#bytes = 0;
    return whole;
  }

  /** Holds `rest`, the start of a frame not yet whole (a DATA header's length was checked against its bound). */
  hold(rest: Buffer): void {
    this.#parts = [rest];
    this.#bytes = rest.length;
    this.#needs = rest.length < HEADER_BYTES ? HEADER_BYTES : HEADER_BYTES + (rest[0] === FrameType.Data ? rest.readUInt32BE(8) : 0);
  }
}
