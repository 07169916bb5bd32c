// Port choice for `tessera up`: use the wanted port when it is free on loopback, otherwise a free one, and say so.
// A moved port is taken below the kernel's ephemeral range: a port from there (what listen(0) gives) can be taken
// as the source port of any outgoing connection between the choice and the moment the part binds it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where moved ports are chosen: from 20000 up to the start of the ephemeral range (32768 unless the kernel says). */
export const MOVED_LOW = 20_000;
export function movedHigh(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > MOVED_LOW + 1_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Binds `port` on loopback (0: any) exclusively and lets it go: the port it got, or null when taken. */
export function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : null;
      srv.close(() => resolve(got));
    });
  });
}

export interface PortChoice {
  readonly wanted: number;
  readonly port: number;
  readonly moved: boolean;
}

/** Picks every port in one pass so two parts never get the same one. */
export class PortPicker {
  readonly #taken = new Set<number>();
  readonly moves: PortChoice[] = [];

  async pick(wanted: number): Promise<number> {
    if (wanted !== 0 && !this.#taken.has(wanted) && (await tryListen(wanted)) === wanted) {
      this.#taken.add(wanted);
      return wanted;
    }
    const high = movedHigh();
    for (let i = 0; i < 50; i++) {
      const candidate = MOVED_LOW + Math.floor(Math.random() * (high - MOVED_LOW));
      const port = this.#taken.has(candidate) ? null : await tryListen(candidate);
      if (port !== null && !this.#taken.has(port)) {
        this.#taken.add(port);
        if (wanted !== 0) this.moves.push({ wanted, port, moved: true });
        return port;
      }
    }
    throw new Error('no free loopback port found');
  }
}
