// Port choice for `tessera up`: use the wanted port when it is free on loopback, otherwise a free one, and say so.
import { createServer } from 'node:net';

function tryListen(port: number): Promise<number | null> {
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
    for (let i = 0; i < 20; i++) {
      const port = await tryListen(0);
      if (port !== null && !this.#taken.has(port)) {
        this.#taken.add(port);
        if (wanted !== 0) this.moves.push({ wanted, port, moved: true });
        return port;
      }
    }
    throw new Error('no free loopback port found');
  }
}
