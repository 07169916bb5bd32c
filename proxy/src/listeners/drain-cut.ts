// The connections of one listener cut at the drain deadline (limits.drainTimeout), so that an exchange ended by that
// cut is recorded as such (responseFlags drain_timeout) and not as a client that left. Each SessionSet holds one;
// a WeakSet, so nothing is kept alive by it.

export class DrainCuts {
  readonly #cut = new WeakSet<object>();

  /** `conn` (a socket, a mux stream, an HTTP/2 session) is being cut because the drain deadline passed. */
  mark(conn: object): void {
    this.#cut.add(conn);
  }

  /** Whether `conn` was cut at the drain deadline. */
  has(conn: object | undefined): boolean {
    return conn !== undefined && this.#cut.has(conn);
  }

  /** The access-log field of a TCP connection's record: `drain_timeout` when the drain deadline cut `conn`. */
  flag(conn: object): { responseFlags?: 'drain_timeout' } {
    return this.#cut.has(conn) ? { responseFlags: 'drain_timeout' } : {};
  }
}
