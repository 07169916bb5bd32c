// The request body of one forwarded HTTP/2 stream as sent so far (h2-forward.ts forwardStream), held while the
// request could still be sent again on a new upstream stream (a refused stream, or a retry on another endpoint), and
// let go for good once it outgrew its limit (routing.retry.bufferBytes: StreamSettings.replayBytes) or the response
// head arrived. One object instead of the chunks, their count and the "is it still held" test spread over a closure.
import type { Writable } from 'node:stream';

/** A request body held for a replay, up to `limit` bytes; once let go it is never held again. */
export class ReplayBuffer {
  readonly #limit: number;
  /** The chunks in order; null once the body outgrew the limit or the response head arrived. */
  #chunks: Buffer[] | null = [];
  #bytes = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The whole body so far is held (it can be sent again). */
  get held(): boolean {
    return this.#chunks !== null;
  }

  /** Bytes of body seen while it was held (past the limit once it outgrew it). */
  get bytes(): number {
    return this.#bytes;
  }

  /** A chunk of the client's body, as it went upstream: held, or the whole body let go once it passes the limit. */
  push(chunk: Buffer): void {
    if (this.#chunks === null) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#limit) this.#chunks = null;
    else this.#chunks.push(chunk);
  }

  /** No replay from here on (the response head is the client's): the body is no longer held. */
  release(): void {
    this.#chunks = null;
  }

  /** Writes the held body to a new upstream stream (nothing when it is no longer held). */
  replayOnto(to: Writable): void {
    for (const chunk of this.#chunks ?? []) to.write(chunk);
  }
}
