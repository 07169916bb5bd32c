// Connections cut at the drain deadline (limits.drainTimeout), so that an exchange ended by that cut is recorded
// as such (responseFlags drain_timeout) and not as a client that left. A WeakSet: nothing is kept alive by it.
const cut = new WeakSet<object>();

/** `conn` (a socket, a mux stream, an HTTP/2 session) is being cut because the drain deadline passed. */
export function markDrainCut(conn: object): void {
  cut.add(conn);
}

/** Whether `conn` was cut at the drain deadline. */
export function isDrainCut(conn: object | undefined): boolean {
  return conn !== undefined && cut.has(conn);
}

/** The access-log field of a TCP connection's record: `drain_timeout` when the drain deadline cut `conn`. */
export function drainCutFlag(conn: object): { responseFlags?: 'drain_timeout' } {
  return cut.has(conn) ? { responseFlags: 'drain_timeout' } : {};
}
