// Consecutive DATA frames for one stream within one read, handed on as one payload: a peer that cuts a body into
// 1-byte frames would otherwise cost a delivery, and a write to the app, per byte (it pays a 12-byte header each).
export class DataRun {
  readonly #deliver: (stream: number, payload: Buffer) => void;
  #stream = 0;
  #parts: Buffer[] = [];
  #bytes = 0;

  constructor(deliver: (stream: number, payload: Buffer) => void) {
    this.#deliver = deliver;
  }

  /** Adds a plain DATA frame's payload; a frame for another stream first delivers the run before it. */
  push(stream: number, payload: Buffer): void {
    if (this.#stream !== stream) this.flush();
    this.#stream = stream;
    this.#parts.push(payload);
    this.#bytes += payload.length;
  }

  /** Delivers what the run holds (before any other frame is read, and at the end of a read). */
  flush(): void {
    if (this.#stream === 0) return;
    const stream = this.#stream;
    const payload = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#bytes);
    this.#stream = 0;
    this.#parts = [];
    this.#bytes = 0;
    this.#deliver(stream, payload);
  }
}
