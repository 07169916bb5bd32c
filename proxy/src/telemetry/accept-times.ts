// When each TCP connection of a TLS server was accepted, so the inbound handshake can be timed from accept to
// secure like the outbound one (from connect). Node hands the raw socket and the TLS socket to different events;
// the TLS socket reaches the raw one it wraps through `_parent` (Node's own link), so no peer address is read to
// pair them (pairing by address and port cost two getpeername calls per connection, ~20 µs here).
import type { Server, Socket } from 'node:net';

/** The raw socket a TLS socket wraps (itself when it wraps none). */
const rawOf = (s: Socket): object => (s as { _parent?: object })._parent ?? s;

export class AcceptTimes {
  /** Weakly held: an entry goes with its connection even if a close were missed. */
  readonly #at = new WeakMap<object, number>();
  #open = 0;

  /** Starts recording `server`'s accepts; an entry lives until taken or until its connection closes. */
  constructor(server: Server, nowMs: () => number) {
    server.on('connection', (raw: Socket) => {
      this.#at.set(raw, nowMs());
      this.#open++;
      raw.once('close', () => {
        if (this.#at.delete(raw)) this.#open--;
      });
    });
  }

  /** Seconds since `socket`'s connection was accepted (once per connection), or undefined when unknown. */
  secondsSince(socket: Socket, nowMs: number): number | undefined {
    const raw = rawOf(socket);
    const at = this.#at.get(raw);
    if (at === undefined) return undefined;
    this.#at.delete(raw);
    this.#open--;
    return (nowMs - at) / 1000;
  }

  /** Open connections still recorded (for tests: nothing leaks). */
  get size(): number {
    return this.#open;
  }
}
