// The gRPC message framing of one request stream as node:http2 hands its DATA over (a 5-byte prefix: a compressed
// flag and a 32-bit big-endian length, then that many bytes), followed only to know the request message a client has
// begun and not finished: how many of its bytes are held and since when. grpc-js buffers such a message whole
// (returning flow-control credit as it goes) and no deadline of its covers a message after the call's headers, so a
// client that sends all but the last bytes of its messages pinned ~30 MB per connection for as long as it liked
// (audit 55c F1). grpc-session-guard.ts times and bounds what this reports.

/** Why a request stream was reset for its unfinished message (counted with the session faults). */
export type GrpcMessageFault = 'message_timeout' | 'message_bytes';

const PREFIX_BYTES = 5;

export class GrpcMessageFraming {
  /** Prefix bytes still to come of the current message (PREFIX_BYTES at a message boundary). */
  #prefixLeft = PREFIX_BYTES;
  /** The length field as read so far. */
  #length = 0;
  /** Body bytes still to come once the prefix is read. */
  #bodyLeft = 0;
  /** Bytes of the current message seen so far, prefix included; 0 at a message boundary. */
  #seen = 0;
  #startedMs: number | undefined;
  #completed = 0;
  readonly #maxMessageBytes: number;

  /**
   * `maxMessageBytes`: the largest message the server reads; a larger one is refused at its prefix, none of it held.
   * `openedAtMs`: when the call's HEADERS came, if a request message is to follow: its first message counts from then
   * (a call that sent HEADERS and nothing more held its connection busy for good: audit 60g F2).
   */
  constructor(maxMessageBytes: number, openedAtMs?: number) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#startedMs = openedAtMs;
  }

  /** Follows `chunk` (the stream's next DATA bytes, arrived at `nowMs`). */
  write(chunk: Uint8Array, nowMs: number): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#seen === 0) this.#startedMs ??= nowMs;
      if (this.#prefixLeft > 0) {
        // Flag byte first, then the length's four bytes, big-endian, possibly split across chunks.
        if (this.#prefixLeft < PREFIX_BYTES) this.#length = this.#length * 256 + chunk[at]!;
        this.#prefixLeft--;
        this.#seen++;
        at++;
        if (this.#prefixLeft === 0) this.#bodyLeft = this.#length;
      } else {
        const n = Math.min(this.#bodyLeft, chunk.length - at);
        this.#bodyLeft -= n;
        this.#seen += n;
        at += n;
      }
      if (this.#prefixLeft === 0 && this.#bodyLeft === 0) this.#complete();
    }
  }

  /** Bytes of the unfinished message the server holds (0 at a boundary, or for a message refused at its prefix). */
  get heldBytes(): number {
    if (this.#prefixLeft === 0 && this.#length > this.#maxMessageBytes) return 0;
    return this.#seen;
  }

  /** When the unfinished message's first byte arrived (the first message's: the call's HEADERS); undefined at a message boundary. */
  get startedMs(): number | undefined {
    return this.#startedMs;
  }

  /** Messages received whole: a stream reset after one may have been acted on (not "refused"). */
  get completed(): number {
    return this.#completed;
  }

  #complete(): void {
    this.#completed++;
    this.#prefixLeft = PREFIX_BYTES;
    this.#length = 0;
    this.#seen = 0;
    this.#startedMs = undefined;
  }
}
