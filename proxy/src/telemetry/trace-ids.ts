// Random W3C trace and span ids, hex, from a pooled CSPRNG buffer: one randomFillSync per 4 KiB of ids rather than
// a call into the system's random source for every id.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export class TraceIds {
  readonly #pool = Buffer.alloc(POOL_BYTES);
  #pos = POOL_BYTES;

  /** 16 random bytes as 32 hex digits, never all zero (W3C: an invalid trace id). */
  traceId(): string {
    for (;;) {
      const id = this.#take(16);
      if (id !== ZERO_TRACE) return id;
    }
  }

  /** 8 random bytes as 16 hex digits, never all zero. */
  spanId(): string {
    for (;;) {
      const id = this.#take(8);
      if (id !== ZERO_SPAN) return id;
    }
  }

  #take(bytes: number): string {
    if (this.#pos + bytes > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#pos = 0;
    }
    const id = this.#pool.toString('hex', this.#pos, this.#pos + bytes);
    this.#pos += bytes;
    return id;
  }
}
