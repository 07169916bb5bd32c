// The plain DATA frames of each stream, joined until the end of the event-loop turn and handed on as one payload
// per stream: a peer that cuts a body into 1-byte frames, even alternating them across streams or sending each in
// its own TLS record, costs at most one delivery (an HTTP/1.1 parse, a write to the app) per stream per turn, not
// one per frame. A run of RUN_BYTES or more goes on at once: bulk data waits for nothing and is not copied. A run
// handed on later in the turn goes only to a stream still open: one reset meanwhile (the session too) takes no more.
// A run's parts are views of this turn's reads and live only until its end; a stream that holds what it is handed
// (its reader paused) copies small pieces and views of larger reads itself (byte-queue.ts).
//
// Each run is kept on its stream and the turn's streams in a reused array, not in a Map keyed by stream id: a
// session's Map that took a stream's run and dropped it every turn was rehashed every few turns, and V8 then kept
// the runs it had held (the frames, their reads, their streams' exchanges) alive through the next scavenges, into
// old space: 110–180 bytes promoted per request under load and a full GC every 0.4–1 s (measured on Node 24, 32
// connections; 5–12 bytes and one full GC in 5 s without it). session-set.ts met the same with connections.

/** A stream's run is handed on as soon as it holds this much (a delivery that carries this much is no waste). */
export const RUN_BYTES = 16 * 1024;

/** A stream as DataRun sees it: where its run of this turn is kept (null: it has none). */
export interface RunHolder {
  run: Buffer[] | null;
  runBytes: number;
}

/** The turn's array of streams with a run is let go after a turn that needed more than this many places. */
const KEPT_PLACES = 256;

export class DataRun<S extends RunHolder> {
  readonly #deliver: (stream: S, payload: Buffer) => void;
  /** Streams given a run this turn, in order; a place is cleared once the turn's runs went. */
  #pending: (S | undefined)[] = [];
  #count = 0;
  #scheduled = false;

  /** `deliver` hands a run to its stream, which drops it if it was reset or ended meanwhile. */
  constructor(deliver: (stream: S, payload: Buffer) => void) {
    this.#deliver = deliver;
  }

  /** Adds a plain DATA frame's payload (no SYN, FIN or RST) to its stream's run. */
  push(stream: S, payload: Buffer): void {
    if (stream.run === null) {
      stream.run = [payload];
      stream.runBytes = payload.length;
      this.#pending[this.#count++] = stream;
    } else {
      stream.run.push(payload);
      stream.runBytes += payload.length;
    }
    if (stream.runBytes >= RUN_BYTES) this.flush(stream);
    else if (!this.#scheduled) {
      // After the poll phase: every read of this turn (a TCP read holds many TLS records) joins the runs first.
      this.#scheduled = true;
      setImmediate(() => this.flushAll());
    }
  }

  /** Delivers what one stream's run holds: before any other DATA frame of that stream (its FIN, its RST). */
  flush(stream: S): void {
    const run = stream.run;
    if (run === null) return;
    const bytes = stream.runBytes;
    stream.run = null;
    stream.runBytes = 0;
    this.#deliver(stream, run.length === 1 ? run[0]! : Buffer.concat(run, bytes));
  }

  /**
   * Delivers every run now (else at the end of the turn): what the peer sent before a frame that acts on the whole
   * session (the answer to a drain PING, after which idle streams close) reaches its streams before that frame acts.
   */
  flushAll(): void {
    this.#scheduled = false;
    let i = 0;
    try {
      // A stream flushed earlier in the turn (and given a new run after) has two places: the second finds it empty.
      for (; i < this.#count; i++) {
        const stream = this.#pending[i]!;
        this.#pending[i] = undefined;
        this.flush(stream);
      }
    } finally {
      if (i < this.#count) this.#keepAfter(i);
      else {
        if (this.#count > KEPT_PLACES) this.#pending = [];
        this.#count = 0;
      }
    }
  }

  /** A delivery threw (at `failed`): the turn's other runs go at the next turn, as if pushed then, not stranded. */
  #keepAfter(failed: number): void {
    this.#pending = this.#pending.slice(failed + 1, this.#count);
    this.#count = this.#pending.length;
    if (this.#count > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flushAll());
    }
  }
}
