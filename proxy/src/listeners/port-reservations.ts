// Every listener's port, bound before the proxy attests: a port in use (or not permitted) fails the start while a
// join token is still unspent (audit 52a F3: the listeners bound only after attestation, so such a start spent it).
// A bound socket is held, not released before its listener serves (another process could take the port in between):
// in one process each listener takes over its socket when it starts (server.listen(handle)); a `workers: N` primary
// holds its own (SO_REUSEPORT, as the workers bind; first checked to be alone on the address: listenAlone) until the
// workers listen. Until then a reserved socket serves nothing: a connection is reset at once, so a proxy that is not
// ready answers no plaintext and serves no identity.
import * as net from 'node:net';
import { TesseraError } from '../../../common/errors.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import { type ListenAddress, listenOn } from './listen.js';
import type { ListenerKind } from './listener.js';

/** The errno codes of a bind that cannot succeed as configured (taken, not permitted, not a local address). */
const BIND_FAULTS: ReadonlySet<string> = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);
/** getaddrinfo's answers for a listen host that does not resolve (no such name, no address, the resolver failing). */
const RESOLVE_FAULTS: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

/** Which listener failed, as the message names it: `inbound "app" (listen nosuch.invalid:15006)`. */
export interface FailedListener {
  readonly kind: ListenerKind;
  readonly name: string;
  readonly listen: { readonly host: string; readonly port?: number };
}

/**
 * A listen failure as the coded error of a start: a bind fault or a listen host that does not resolve is
 * TESSERA_ERR_PROXY_LISTEN_FAILED naming the listener and its address, else unchanged. (A host that did not resolve
 * was PROXY_START_FAILED "cannot getaddrinfo: failed (ENOTFOUND)", naming neither: audit 55a F8.)
 */
export function listenFailure(e: unknown, when: string, which?: FailedListener): unknown {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || !(BIND_FAULTS.has(err.code) || RESOLVE_FAULTS.has(err.code))) return e;
  const what = err.code === 'EADDRINUSE' ? 'a listener port is already in use' : RESOLVE_FAULTS.has(err.code) ? 'a listener host does not resolve' : 'a listener address cannot be bound';
  const where = which ? ` ${which.kind} "${which.name}" (listen ${which.listen.host}${which.listen.port === undefined ? '' : `:${which.listen.port}`})` : '';
  return new TesseraError('TESSERA_ERR_PROXY_LISTEN_FAILED', `${what}:${where} ${err.message} (${when})`, which ? { listener: `${which.kind}/${which.name}` } : {}, { cause: e });
}

/**
 * Binds `server` with SO_REUSEPORT (the workers then join it) where no socket listens yet. SO_REUSEPORT alone would
 * join a same-uid reuseport group already there (another `workers` proxy; nginx or Envoy with `reuseport`) and the
 * kernel would split new connections between the two (audit 53b F1). A bind without it fails on any listener, with
 * SO_REUSEPORT or not: that probe is closed and the address it bound (a port 0 pick, a host name resolved) bound
 * again with SO_REUSEPORT before any other I/O is handled. A same-uid reuseport bind landing in that gap (microseconds)
 * would still be joined; holding the probe instead is not possible, as Linux then refuses the workers' own binds.
 */
async function listenAlone(server: net.Server, address: ListenAddress): Promise<number> {
  const probe = net.createServer({ pauseOnConnect: true }, (socket) => socket.resetAndDestroy());
  const port = await listenOn(probe, { host: address.host, port: address.port });
  // An IP as configured (an IPv6 zone kept); a name as the probe resolved it, so no lookup falls in the gap.
  const host = net.isIP(address.host) ? address.host : (probe.address() as net.AddressInfo).address;
  // No await from here to the bind: close() lets the fd go at once, listenOn binds an IP on the next tick.
  probe.close();
  return listenOn(server, { host, port, reusePort: true });
}

export class PortReservations {
  /** By `kind/name`: the bound socket, until its listener takes it. */
  readonly #held = new Map<string, net.Server>();
  readonly #ports = new Map<string, number>();

  /**
   * Binds every inbound, edge and outbound address of `config`, in that order; on a failure closes what it bound
   * and throws TESSERA_ERR_PROXY_LISTEN_FAILED. `reusePort`: the workers will bind the same ports, so each is bound
   * with SO_REUSEPORT, and only where no other socket listens (listenAlone).
   */
  static async bind(config: Pick<ProxyConfig, 'inbound' | 'edge' | 'outbound'>, opts: { readonly reusePort?: boolean } = {}): Promise<PortReservations> {
    const r = new PortReservations();
    const all: [ListenerKind, { readonly name: string; readonly listen: ListenAddress }][] = [
      ...config.inbound.map((c) => ['inbound', c] as [ListenerKind, typeof c]),
      ...config.edge.map((c) => ['edge', c] as [ListenerKind, typeof c]),
      ...config.outbound.map((c) => ['outbound', c] as [ListenerKind, typeof c]),
    ];
    let current: FailedListener | undefined;
    try {
      for (const [kind, c] of all) {
        current = { kind, name: c.name, listen: c.listen };
        // Fail closed: a connection before the listener serves is reset, not left waiting in the backlog.
        const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.resetAndDestroy());
        const key = `${kind}/${c.name}`;
        r.#held.set(key, server);
        r.#ports.set(key, await (opts.reusePort ? listenAlone(server, c.listen) : listenOn(server, c.listen)));
      }
    } catch (e) {
      await r.close();
      throw listenFailure(e, 'nothing was attested: a join token is not spent', current);
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
