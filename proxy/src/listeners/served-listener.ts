// What every sidecar listener does alike around the server bound to its port: bind it (counting connections Node
// drops at limits.maxConnections), track the open connections with one deadline sweep, stop accepting and drain
// them, tell when they are gone, cut what is left and undo what the listener subscribed to. The listener kinds
// (inbound/outbound × HTTP/1.1+TCP/HTTP/2) add only their protocol. A base class rather than a member: the
// Listener surface is the same for every kind, and delegating it member by member would be the very copy it removes.
import type * as net from 'node:net';
import { type ExchangeLimits, withExchangeLimits } from '../config/exchange-limits.js';
import type { Address } from '../config/proxy-config.js';
import type { ByteSocket } from '../http1/byte-socket.js';
import { Http1Session } from '../http1/http1-session.js';
import type { SessionHooks, SessionOptions } from '../http1/http1-session-types.js';
import { ExchangeRecorder } from '../telemetry/exchange-recorder.js';
import type { ConnectionPool } from '../upstream/connection-pool.js';
import { keepAccepting } from './keep-accepting.js';
import { listenOn } from './listen.js';
import type { Listener } from './listener.js';
import type { ListenerDeps } from './listener-deps.js';
import { type Connection, SessionSet } from './session-set.js';

type ListenerHooks = Omit<SessionHooks, 'rejected' | 'upgraded'>;

export class ServedListener<C extends { readonly name: string; readonly listen: Address; readonly timeoutMs?: number } & ExchangeLimits> implements Listener {
  readonly kind: 'inbound' | 'outbound';
  readonly config: C;
  protected readonly d: ListenerDeps;
  protected readonly sessions: SessionSet;
  /** Where each ended exchange goes: metrics, span, access log. */
  protected readonly exchanges: ExchangeRecorder;
  readonly #accepting: net.Server;
  readonly #undo: (() => void)[] = [];
  #port = 0;
  /** The clients are plaintext TCP sockets (SessionOptions.plainTcpClient): set by the listener kinds serving apps. */
  protected plainTcpClients = false;
  /** The options of the last session, reused while the pool and hooks are the same (no objects per connection). */
  #lastOptions: { readonly pool: ConnectionPool | null; readonly hooks: ListenerHooks; readonly options: SessionOptions } | null = null;

  /**
   * `accepting`: the server bound to the port; `onSweep` runs with every deadline sweep (e.g. the upstream pool's) and
   * says whether the upstream side still holds connections.
   */
  constructor(kind: 'inbound' | 'outbound', config: C, deps: ListenerDeps, accepting: net.Server, onSweep: () => boolean = () => false) {
    this.kind = kind;
    this.config = config;
    this.d = deps;
    this.#accepting = accepting;
    accepting.maxConnections = deps.limits.maxConnections;
    this.sessions = new SessionSet(deps, onSweep);
    this.exchanges = new ExchangeRecorder(deps.metrics, deps.accessLog);
  }

  async start(bound?: net.Server): Promise<{ host: string; port: number }> {
    this.#port = await listenOn(this.#accepting, bound ?? this.config.listen, () => this.d.metrics.rejected(this.kind, 'too_many_connections'));
    keepAccepting(this.#accepting, this.d.nowMs, (err, failures) => this.d.log.warn({ listener: this.config.name, err, failures }, `${this.kind} accept failed`));
    this.sessions.start();
    return { host: this.config.listen.host, port: this.#port };
  }

  /** The bound port (0 before start). */
  get port(): number {
    return this.#port;
  }

  get openConnections(): number {
    return this.sessions.size;
  }

  /** Stop accepting; idle keep-alive connections close now, busy ones after their exchange (HTTP/2: GOAWAY). */
  drain(): void {
    this.#accepting.close();
    this.sessions.drain();
  }

  idle(): Promise<void> {
    return this.sessions.idle();
  }

  /** Everything still open is cut (after the drain deadline), then what the listener registered is undone. */
  close(): Promise<void> {
    const closed = this.sessions.destroyAll();
    for (const undo of this.#undo.splice(0)) undo();
    return closed;
  }

  /** Registers `undo` (an unsubscribe, a pool to close) to run at close(). */
  protected onClose(undo: () => void): void {
    this.#undo.push(undo);
  }

  /** Serves HTTP/1.1 on `socket` (requests forwarded through `pool`, or each plan's own) as a tracked session; returns it. */
  protected serveHttp1(socket: ByteSocket, pool: ConnectionPool | null, hooks: ListenerHooks, drainVia?: (drain: () => void) => void): Http1Session {
    const session = new Http1Session(socket, this.#sessionOptions(pool, hooks));
    // A stream of a multiplexed session drains only once its dialer has read the session's GOAWAY (drainVia).
    this.sessions.add(
      socket,
      drainVia
        ? {
            get deadlineMs() {
              return session.deadlineMs;
            },
            get closed() {
              return session.closed;
            },
            expire: () => session.expire(),
            drain: () => drainVia(() => session.drain()),
            drainNow: () => session.drain(),
            cut: () => session.cut(),
          }
        : session,
    );
    return session;
  }

  #sessionOptions(pool: ConnectionPool | null, hooks: ListenerHooks): SessionOptions {
    const last = this.#lastOptions;
    if (last && last.pool === pool && last.hooks === hooks) return last.options;
    const d = this.d;
    const kind = this.kind;
    const options: SessionOptions = {
      // The listener's own requestTimeout and minRequestBodyRate, over the proxy-wide ones.
      limits: withExchangeLimits(d.limits, this.config),
      responseLimits: { maxHeaderBytes: d.limits.maxResponseHeaderBytes, maxHeaders: d.limits.maxResponseHeaders },
      upgrades: d.upgrades,
      ...(pool ? { pool } : {}),
      nowMs: d.nowMs,
      timers: d.timers,
      ...(d.routing ? { schedule: d.routing.schedule } : {}),
      ...(this.config.timeoutMs ? { totalTimeoutMs: this.config.timeoutMs } : {}),
      ...(this.plainTcpClients ? { plainTcpClient: true } : {}),
      hooks: { ...hooks, rejected: (reason: string) => d.metrics.rejected(kind, reason), upgraded: (delta) => d.metrics.upgradedConnection(kind, delta) },
    };
    this.#lastOptions = { pool, hooks, options };
    return options;
  }

  /** Counts `conn` in tessera_connections_active until it closes. */
  protected countConnection(conn: Connection): void {
    countConnection(this.d, this.kind, conn);
  }
}

/** Counts `conn` in tessera_connections_active{direction} until it closes. */
export function countConnection(deps: Pick<ListenerDeps, 'metrics'>, direction: 'inbound' | 'outbound', conn: Connection): void {
  deps.metrics.connectionOpened(direction);
  conn.once('close', () => deps.metrics.connectionClosed(direction));
}
