// The Workload API's streaming calls (FetchX509SVID, FetchX509Bundles, FetchJWTBundles) carry a state, not a log:
// each push sends the whole current state. A stream whose client does not read is sent nothing more until it drains,
// then the state as it is then, as SPIRE's agent does: queuing every push for a client that never reads grew a
// sidecar without bound while bundles changed (FetchJWTBundles, audit 60d F1).

/** What a server stream of grpc-js offers here. */
export interface StateStream {
  readonly cancelled: boolean;
  readonly writableEnded: boolean;
  write(message: unknown): boolean;
  end(): void;
  on(event: 'drain' | 'cancelled' | 'close' | 'error', listener: () => void): unknown;
}

export class StateStreams<S extends StateStream> {
  readonly #streams = new Set<S>();
  /** Streams whose last write was refused: sent the state once they drain, not before. */
  readonly #behind = new WeakSet<S>();
  /** The complete current state as a message, or undefined while there is none. */
  readonly #state: () => unknown;

  constructor(state: () => unknown) {
    this.#state = state;
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Follows `call` until it ends, and sends it the current state. */
  open(call: S): void {
    this.#streams.add(call);
    call.on('drain', () => {
      if (this.#behind.delete(call)) this.#write(call);
    });
    const drop = () => this.#streams.delete(call);
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    this.#write(call);
  }

  /** Sends the new state to every stream that is not behind (those get it when they drain). */
  pushAll(): void {
    for (const call of this.#streams) this.#write(call);
  }

  /** Ends every stream (status OK). */
  endAll(): void {
    for (const call of this.#streams) if (!call.writableEnded) call.end();
    this.#streams.clear();
  }

  #write(call: S): void {
    if (call.cancelled || call.writableEnded || this.#behind.has(call)) return;
    const message = this.#state();
    if (message !== undefined && !call.write(message)) this.#behind.add(call);
  }
}
