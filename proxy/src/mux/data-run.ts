// The plain DATA frames of each stream, joined until the end of the event-loop turn and handed on as one payload
// per stream: a peer that cuts a body into 1-byte frames, even alternating them across streams or sending each in
// its own TLS record, costs at most one delivery (an HTTP/1.1 parse, a write to the app) per stream per turn, not
// one per frame. A run of RUN_BYTES or more goes on at once: bulk data waits for nothing and is not copied. A run
// handed on later in the turn goes only to a stream still open: one reset meanwhile (the session too) takes no more.
// A run's parts are views of this turn's reads and live only until its end; a stream that holds what it is handed
// (its reader paused) copies small pieces and views of larger reads itself (byte-queue.ts).

/** A stream's run is handed on as soon as it holds this much (a delivery that carries this much is no waste). */
export const RUN_BYTES = 16 * 1024;

export class DataRun {
  readonly #deliver: (stream: number, payload: Buffer) => void;
  readonly #runs = new Map<number, { parts: Buffer[]; bytes: number }>();
  #scheduled = false;

  constructor(deliver: (stream: number, payload: Buffer) => void) {
    this.#deliver = deliver;
  }

  /** Adds a plain DATA frame's payload (no SYN, FIN or RST) to its stream's run. */
  push(stream: number, payload: Buffer): void {
    const run = this.#runs.get(stream);
    if (run) {
      run.parts.push(payload);
      run.bytes += payload.length;
    } else this.#runs.set(stream, { parts: [payload], bytes: payload.length });
    if ((run?.bytes ?? payload.length) >= RUN_BYTES) this.flush(stream);
    else if (!this.#scheduled) {
      // After the poll phase: every read of this turn (a TCP read holds many TLS records) joins the runs first.
      this.#scheduled = true;
      setImmediate(() => this.#flushAll());
    }
  }

  /** Delivers what one stream's run holds: before any other DATA frame of that stream (its FIN, its RST). */
  flush(stream: number): void {
    const run = this.#runs.get(stream);
    if (run === undefined) return;
    this.#runs.delete(stream);
    this.#deliver(stream, run.parts.length === 1 ? run.parts[0]! : Buffer.concat(run.parts, run.bytes));
  }

  #flushAll(): void {
    this.#scheduled = false;
    for (const stream of [...this.#runs.keys()]) this.flush(stream);
  }
}
