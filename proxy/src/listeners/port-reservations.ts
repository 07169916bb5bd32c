// Every listener's port, bound before the proxy attests: a port in use (or not permitted) fails the start while a
// join token is still unspent (audit 52a F3: the listeners bound only after attestation, so such a start spent it).
// A bound socket is held, not probed and released (another process could take the port in between): in one process
// each listener takes over its socket when it starts (server.listen(handle)); a `workers: N` primary holds its own
// (SO_REUSEPORT, as the workers bind) until the workers listen. Until then a reserved socket serves nothing: a
// connection is reset at once, so a proxy that is not ready answers no plaintext and serves no identity.
import * as net from 'node:net';
import { TesseraError } from '../../../common/errors.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import { type ListenAddress, listenOn } from './listen.js';
import type { ListenerKind } from './listener.js';

/** The errno codes of a bind that cannot succeed as configured (taken, not permitted, not a local address). */
const BIND_FAULTS: ReadonlySet<string> = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

/** A listen failure as the coded error of a start: a bind fault is TESSERA_ERR_PROXY_LISTEN_FAILED, else unchanged. */
export function listenFailure(e: unknown, when: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || !BIND_FAULTS.has(err.code)) return e;
  const what = err.code === 'EADDRINUSE' ? 'a listener port is already in use' : 'a listener address cannot be bound';
  return new TesseraError('TESSERA_ERR_PROXY_LISTEN_FAILED', `${what}: ${err.message} (${when})`, {}, { cause: e });
}

export class PortReservations {
  /** By `kind/name`: the bound socket, until its listener takes it. */
  readonly #held = new Map<string, net.Server>();
  readonly #ports = new Map<string, number>();

  /**
   * Binds every inbound, edge and outbound address of `config`, in that order; on a failure closes what it bound
   * and throws TESSERA_ERR_PROXY_LISTEN_FAILED. `reusePort`: the workers will bind the same ports.
   */
  static async bind(config: Pick<ProxyConfig, 'inbound' | 'edge' | 'outbound'>, opts: { readonly reusePort?: boolean } = {}): Promise<PortReservations> {
    const r = new PortReservations();
    const all: [ListenerKind, { readonly name: string; readonly listen: ListenAddress }][] = [
      ...config.inbound.map((c) => ['inbound', c] as [ListenerKind, typeof c]),
      ...config.edge.map((c) => ['edge', c] as [ListenerKind, typeof c]),
      ...config.outbound.map((c) => ['outbound', c] as [ListenerKind, typeof c]),
    ];
    try {
      for (const [kind, c] of all) {
        // Fail closed: a connection before the listener serves is reset, not left waiting in the backlog.
        const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.resetAndDestroy());
        const key = `${kind}/${c.name}`;
        r.#held.set(key, server);
        r.#ports.set(key, await listenOn(server, { ...c.listen, ...(opts.reusePort ? { reusePort: true } : {}) }));
      }
    } catch (e) {
      await r.close();
      throw listenFailure(e, 'nothing was attested: a join token is not spent');
    }
    return r;
  }

  /** The bound port of each listener, by `kind/name` (config port 0: the one the kernel picked). */
  ports(): Record<string, number> {
    return Object.fromEntries(this.#ports);
  }

  /** The bound socket of the `kind` listener `name`, handed over to it (undefined when none is held). */
  take(kind: ListenerKind, name: string): net.Server | undefined {
    const key = `${kind}/${name}`;
    const server = this.#held.get(key);
    this.#held.delete(key);
    return server;
  }

  /** Closes the sockets no listener took. */
  async close(): Promise<void> {
    const left = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(left.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}
