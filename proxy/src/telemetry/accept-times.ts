// When each TCP connection of a TLS server was accepted, so the inbound handshake can be timed from accept to
// secure like the outbound one (from connect). Node hands the raw socket and the TLS socket to different
// events; they share the peer address and port, which is unique per open connection on one listener.
import type { Server, Socket } from 'node:net';

const keyOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;

export class AcceptTimes {
  readonly #at = new Map<string, number>();

  /** Starts recording `server`'s accepts; an entry lives until taken or until its connection closes. */
  constructor(server: Server, nowMs: () => number) {
    server.on('connection', (raw: Socket) => {
      const key = keyOf(raw);
      this.#at.set(key, nowMs());
      raw.once('close', () => this.#at.delete(key));
    });
  }

  /** Seconds since `socket`'s connection was accepted (once per connection), or undefined when unknown. */
  secondsSince(socket: Socket, nowMs: number): number | undefined {
    const key = keyOf(socket);
    const at = this.#at.get(key);
    if (at === undefined) return undefined;
    this.#at.delete(key);
    return (nowMs - at) / 1000;
  }

  /** Open connections still recorded (for tests: nothing leaks). */
  get size(): number {
    return this.#at.size;
  }
}
