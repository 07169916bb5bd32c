// A listener's connection cap, failing the way a good proxy does: a full table makes room for a newcomer by
// closing the connection least likely to be a real client's, rather than refusing the newcomer. With a first-come
// cap, connections that never sent a ClientHello (or idle ones), reopened as they were closed, kept every real
// client out (the injector's webhook, audit 5 N1; the admin listeners and the bundle endpoint, audit 6). A real
// client completes its handshake within milliseconds and sends its request at once, so what is closed first is:
//   1. a connection that has asked nothing (its TLS handshake not completed, or completed with no request since)
//      for longer than NEW_CONNECTION_GRACE_MS since it came, the oldest first: a flood that never finishes its
//      handshakes, or finishes them and then sends nothing;
//   2. else an idle one that has carried a request (keep-alive), the one idle longest first;
//   3. else a connection younger than the grace that has asked nothing yet, the oldest first;
//   4. else one whose request has been in progress for longer than `busyGraceMs` (a slow sender), oldest first.
// Only when every connection is a request younger than the grace is the newcomer closed instead. A real client is
// a young connection for the milliseconds of its handshake and first request: a flood of idle connections
// reopened as fast as they are closed goes before it, whether they asked nothing (audit 61e F1: every handshake
// went first, so the real one, the oldest handshake, was closed) or asked once and then sat (audit 61h F1: every
// connection that had asked nothing went first, so the real one, the only such, was closed).
import type { Clock } from '../common/clock.js';

export type ConnectionState = 'handshake' | 'idle' | 'busy';

export interface ConnectionTableOptions {
  /** Connections open at once. */
  readonly max: number;
  /** A request in progress for less than this is never closed to make room. */
  readonly busyGraceMs: number;
  readonly clock: Clock;
}

export interface TrackedConnection {
  readonly state: ConnectionState;
  /** The TLS handshake completed. */
  secured(): void;
  /** A request started (headers read). */
  busy(): void;
  /** Its answer is written out: idle again until the next request. */
  idle(): void;
  /** Closed: the place is free. Later calls do nothing. */
  closed(): void;
}

/** How long a new connection may take to ask its first request before it counts as one that asks nothing. */
export const NEW_CONNECTION_GRACE_MS = 1_000;

interface Entry {
  state: ConnectionState;
  /** When it came. */
  readonly admitted: number;
  /** When it entered its state. */
  since: number;
  /** It has carried a request (been busy once). */
  asked: boolean;
  readonly close: () => void;
}

/** The victim classes, in order (the comment at the top); each ranked by `rankOf`, smallest first. */
const CLASSES = 4;
function classOf(e: Entry, now: number): number {
  if (e.state === 'busy') return 3;
  if (e.asked) return 1;
  return now - e.admitted >= NEW_CONNECTION_GRACE_MS ? 0 : 2;
}
const rankOf = (e: Entry, c: number): number => (c === 1 || c === 3 ? e.since : e.admitted);

export class ConnectionTable {
  readonly #o: ConnectionTableOptions;
  readonly #entries = new Set<Entry>();

  constructor(options: ConnectionTableOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** How many connections are in each state. */
  count(state: ConnectionState): number {
    let n = 0;
    for (const e of this.#entries) if (e.state === state) n++;
    return n;
  }

  /**
   * A new connection (not yet in its handshake's first byte). When the table is full the victim is closed (its
   * `close` is called, and it must call `closed()` on its handle) and the newcomer is admitted; null when no
   * connection may be closed for it: the caller closes the newcomer. `onEvict` learns which state was cut.
   */
  admit(close: () => void, onEvict?: (state: ConnectionState) => void): TrackedConnection | null {
    if (this.#entries.size >= this.#o.max) {
      const victim = this.#victim();
      if (!victim) return null;
      this.#entries.delete(victim);
      onEvict?.(victim.state);
      victim.close();
    }
    const now = this.#o.clock.nowMs();
    const entry: Entry = { state: 'handshake', admitted: now, since: now, asked: false, close };
    this.#entries.add(entry);
    const move = (state: ConnectionState) => {
      if (!this.#entries.has(entry) || entry.state === state) return;
      entry.state = state;
      entry.since = this.#o.clock.nowMs();
      if (state === 'busy') entry.asked = true;
    };
    return {
      get state() {
        return entry.state;
      },
      secured: () => move('idle'),
      busy: () => move('busy'),
      idle: () => move('idle'),
      closed: () => {
        this.#entries.delete(entry);
      },
    };
  }

  #victim(): Entry | undefined {
    const now = this.#o.clock.nowMs();
    const oldest: (Entry | undefined)[] = new Array(CLASSES);
    for (const e of this.#entries) {
      if (e.state === 'busy' && now - e.since < this.#o.busyGraceMs) continue;
      const c = classOf(e, now);
      const o = oldest[c];
      if (!o || rankOf(e, c) < rankOf(o, c)) oldest[c] = e;
    }
    return oldest.find((e) => e !== undefined);
  }
}
