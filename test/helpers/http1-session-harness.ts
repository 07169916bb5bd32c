// A loopback harness for Http1Session: a real listening socket with one session per connection, a real pool of
// real upstream connections to an app the test writes (raw bytes on a net.Server), and the clock and the deadline
// sweep in the test's hands. Nothing is mocked: only time is stepped instead of waited for.
import { realTimers, type Timers } from '../../shared-io/timers.js';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Http1Session } from '../../proxy/src/http1/http1-session.js';
import type { ExchangeRecord, RequestPlan, SessionLimits } from '../../proxy/src/http1/http1-session-types.js';
import type { HttpHead } from '../../proxy/src/http1/http1-head.js';
import { DEFAULT_UPGRADES } from '../../proxy/src/http1/upgrade-offer.js';
import { ConnectionPool } from '../../proxy/src/upstream/connection-pool.js';
import { plainConnector } from '../../proxy/src/upstream/connectors.js';

export const HARNESS_LIMITS: SessionLimits = { maxHeaderBytes: 8_192, maxHeaders: 50, headersTimeoutMs: 5_000, idleTimeoutMs: 5_000, requestTimeoutMs: 1_000, streamIdleTimeoutMs: 3_000, minRequestBodyRate: 0 };
/** SessionOptions.upgrades as a proxy without `upgrades:` in its config has them. */
export const HARNESS_UPGRADES: ReadonlySet<string> = new Set(DEFAULT_UPGRADES);

export type Cleanup = () => unknown;

export async function listenLoopback(server: net.Server, cleanups: Cleanup[]): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

/** An app of raw bytes: `onSocket` gets every upstream connection the proxy opens (all are destroyed at cleanup). */
export async function rawApp(cleanups: Cleanup[], onSocket: (s: net.Socket, index: number) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    sockets.push(s);
    onSocket(s, sockets.length - 1);
  });
  const port = await listenLoopback(server, cleanups);
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
  });
  return { port, sockets };
}

export interface HarnessOptions {
  readonly pool?: { maxConnections: number; maxQueue: number };
  readonly limits?: Partial<SessionLimits>;
  /** Default: forward everything, upgrades allowed. */
  readonly plan?: (head: HttpHead) => RequestPlan;
  /** SessionOptions.upgrades (lower-case); absent: HARNESS_UPGRADES. */
  readonly upgrades?: ReadonlySet<string>;
  readonly totalTimeoutMs?: number;
  readonly responseHeaders?: Readonly<Record<string, string>>;
  readonly firstHeadTimeout?: boolean;
  /** false: the session gets no default pool (every plan must name one). */
  readonly defaultPool?: boolean;
  /** Also called with every record and its plan's context (e.g. to end a balanced route, as a listener does). */
  readonly done?: (record: ExchangeRecord, context: unknown) => void;
  /** SessionOptions.timers: where an exchange's total deadline and a read into the void run (absent: real timers). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** The session's scheduler for a retry's backoff; absent: none (a retry starts at once). */
  readonly schedule?: (ms: number, fn: () => void) => void;
  /** SessionOptions.plainTcpClient (the outbound listener's app clients). */
  readonly plainTcpClient?: boolean;
  /** Gets the proxy's end of each client connection before its session does (e.g. to watch what is queued on it). */
  readonly onDownstream?: (socket: net.Socket) => void;
  /** The clients come over TLS with this certificate (as at the edge): each session gets the TLS socket. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export interface Harness {
  readonly port: number;
  readonly clock: { now: number };
  readonly records: ExchangeRecord[];
  readonly rejected: string[];
  /** Upgraded connections open now (the hook's running sum). */
  readonly upgraded: () => number;
  readonly pool: ConnectionPool;
  readonly sessions: Http1Session[];
  /** Steps the clock by `ms`, then runs the listener's sweep: every session past its deadline expires. */
  advance(ms: number): void;
}

export async function http1Harness(appPort: number, cleanups: Cleanup[], o: HarnessOptions = {}): Promise<Harness> {
  const clock = { now: 1_000_000 };
  const records: ExchangeRecord[] = [];
  const rejected: string[] = [];
  const sessions: Http1Session[] = [];
  let upgraded = 0;
  const limits = { ...HARNESS_LIMITS, ...o.limits };
  const pool = new ConnectionPool({ connect: plainConnector('127.0.0.1', appPort, 2_000), ...(o.pool ?? { maxConnections: 8, maxQueue: 8 }), idleTimeoutMs: 60_000, nowMs: () => clock.now, timers: realTimers });
  cleanups.push(() => pool.close());
  const serve = (socket: net.Socket) => {
    o.onDownstream?.(socket);
    sessions.push(
      new Http1Session(socket, {
        limits,
        responseLimits: { maxHeaderBytes: 8_192, maxHeaders: 50 },
        upgrades: o.upgrades ?? HARNESS_UPGRADES,
        ...(o.defaultPool === false ? {} : { pool }),
        nowMs: () => clock.now,
        ...(o.totalTimeoutMs ? { totalTimeoutMs: o.totalTimeoutMs } : {}),
        ...(o.responseHeaders ? { responseHeaders: o.responseHeaders } : {}),
        ...(o.firstHeadTimeout ? { firstHeadTimeout: true } : {}),
        ...(o.schedule ? { schedule: o.schedule } : {}),
        timers: o.timers ?? realTimers,
        ...(o.plainTcpClient ? { plainTcpClient: true } : {}),
        hooks: {
          plan: o.plan ?? (() => ({ forward: true, add: '', upgrade: true })),
          done: (r, context) => {
            records.push(r);
            o.done?.(r, context);
          },
          rejected: (r) => rejected.push(r),
          upgraded: (d) => {
            upgraded += d;
          },
        },
      }),
    );
  };
  const server = o.tls ? tls.createServer(o.tls, serve) : net.createServer(serve);
  cleanups.push(() => {
    for (const s of sessions) s.drain();
  });
  const port = await listenLoopback(server, cleanups);
  return {
    port,
    clock,
    records,
    rejected,
    pool,
    sessions,
    upgraded: () => upgraded,
    advance(ms: number) {
      clock.now += ms;
      for (const s of sessions) if (!s.closed && s.deadlineMs < clock.now) s.expire();
    },
  };
}

/** A client socket on the harness that collects everything it receives. */
export async function client(port: number, cleanups: Cleanup[]): Promise<{ socket: net.Socket; text: () => string; closed: () => boolean; ended: () => boolean }> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let text = '';
  let closed = false;
  let ended = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  socket.on('end', () => {
    ended = true;
  });
  socket.on('close', () => {
    closed = true;
  });
  socket.on('error', () => undefined);
  cleanups.push(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, text: () => text, closed: () => closed, ended: () => ended };
}

/** Collects what an app socket receives. */
export function collect(s: net.Socket): () => string {
  let text = '';
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  return () => text;
}
