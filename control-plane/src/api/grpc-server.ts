// The gRPC listener: our own node:tls server terminates TLS (the control plane's SVID, client certificates
// optional but captured, h2 only, handshake timeout, connection cap) and hands each connection to grpc-js
// through a connection injector, whose HTTP/2 sessions have their control traffic bounded (a WINDOW_UPDATE flood
// is cut: shared-io/grpc-session-guard.ts). Each connection is one entry by peer address, from accept to close: its
// place at the cap, its TLS socket, its certificate chain (handlers look it up by the call's peer), its first-call
// deadline.
import { constants as cryptoConstants } from 'node:crypto';
import type { Socket } from 'node:net';
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { TesseraError } from '../../../common/errors.js';
import { peerChainDer } from '../../../common/pki/peer-chain.js';
import { TLS_CIPHERS } from '../../../common/tls-ciphers.js';
import { ConnectionTable, type TrackedConnection } from '../../../shared-io/connection-table.js';
import type { GrpcMessageFault } from '../../../shared-io/grpc-message-framing.js';
import { type GrpcMethodFault, GrpcSessionGuard } from '../../../shared-io/grpc-session-guard.js';
import type { H2SessionFault } from '../../../shared-io/h2-session-error.js';
import { refuseRenegotiation } from '../../../shared-io/no-renegotiation.js';
import { ReadRefusalCall } from '../../../shared-io/read-refusal.js';
import type { Timers } from '../../../shared-io/timers.js';
import { toGrpcError } from './grpc-status.js';

/** The control plane's codes for a request grpc-js will not read (shared-io/read-refusal.ts). */
const ISSUANCE_READ_REFUSALS = { tooLarge: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', malformed: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST' } as const;

/**
 * A frozen proxy (SIGSTOP, a hung node: its kernel still answers TCP) held its connection, its Register stream and so
 * its service registration for as long as its SVID lasted, for grpc-js pings no one by default: each caller had to
 * find the dead endpoint itself (audit 60c F2). Unanswered for 30 s at most, the connection is closed, the calls on it
 * end as on a crash, and the registration goes after registrationGrace. Proxies answer PINGs in their event loop.
 */
export const SERVER_KEEPALIVE = { timeMs: 20_000, timeoutMs: 10_000 } as const;

export interface ServerIdentity {
  /** PEM chain, leaf first. */
  readonly certChainPem: string;
  readonly keyPem: string;
  /** PEM roots client certificates may chain to (every authority in the bundle). */
  readonly clientCasPem: string;
}

export interface GrpcServerOptions {
  readonly listen: string;
  readonly identity: ServerIdentity;
  readonly handshakeTimeoutMs: number;
  /**
   * After the handshake: the first call's headers must be complete by then (grpc-js has no headers timeout); and any
   * request message, once begun, must arrive whole within it (shared-io/grpc-session-guard.ts).
   */
  readonly headersTimeoutMs: number;
  readonly maxConnections: number;
  /**
   * The most grpc-js buffers of one message; a larger one is never read, and its handler gets a RejectedMessage
   * (read-refusal.ts) to answer like any oversized request.
   */
  readonly maxReceiveBytes: number;
  /** `max_connections`: a connection closed to make room for a newcomer at the cap, or a newcomer refused there. */
  readonly onTlsFailure?: (reason: 'timeout' | 'protocol' | 'alpn' | 'headers_timeout' | 'max_connections', peer: string) => void;
  /**
   * An HTTP/2 session cut for a flood of frames (WINDOW_UPDATE, PING, ...) or closed for a protocol error; a stream
   * reset for a request message not whole within headersTimeoutMs, or past the bounds on unfinished messages' bytes;
   * a call to a method no service added here serves (`unknown_method`).
   */
  readonly onRejected?: (reason: H2SessionFault | GrpcMessageFault | GrpcMethodFault) => void;
  /**
   * A PING to every connection after `timeMs` (grpc-js counts from its last PING), the connection closed when its
   * answer has not come within `timeoutMs`. Default SERVER_KEEPALIVE.
   */
  readonly keepalive?: { readonly timeMs: number; readonly timeoutMs: number };
  /** Reads the message deadline. */
  readonly nowMs: () => number;
  /**
   * A connection's headers deadline runs here (unref'd), the sessions' flood sweep (unref'd), and stop()'s wait for
   * the sockets (holding the process).
   */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval'>;
}

/** One TCP connection to the port, from accept to close. */
interface PeerConnection {
  /**
   * Its place in the connection cap's table. The cap fails as the proxies' listeners and the bundle endpoint do: at
   * the cap another connection is closed to make room, in connection-table.ts's order (first one that has asked
   * nothing for over a second); one with a call in progress never is. With node:tls's own silent cap, 400 idle TLS
   * connections (or bare TCP ones, for the handshake timeout) kept callers out, uncounted (audit 60f F2).
   */
  readonly place: TrackedConnection;
  /** Its TLS socket, once handshaken. */
  secure?: TLSSocket;
  /** The certificate chain it presented (empty when none), read once: it judges every call of the connection. */
  chain: Buffer[];
  /** Until its first call starts: the timer that cuts it when its headers deadline passes. */
  firstCall?: unknown;
}

export class GrpcServer {
  readonly grpc: grpc.Server;
  readonly #o: GrpcServerOptions;
  /** Every connection, by peer address: what grpc-js names a call's peer (`getPeer()`). */
  readonly #connections = new Map<string, PeerConnection>();
  /** The methods added (`/package.Service/Method`): a call to another is counted `unknown_method`. */
  readonly #served = new Set<string>();
  /** Connections closed to make room, by their TCP socket. */
  readonly #evicted = new WeakSet<Socket>();
  #tls: TlsServer | undefined;
  #injector: grpc.ConnectionInjector | undefined;
  #guard: GrpcSessionGuard | undefined;
  #port = 0;

  constructor(opts: GrpcServerOptions) {
    this.#o = opts;
    this.grpc = new grpc.Server({
      'grpc.max_receive_message_length': opts.maxReceiveBytes,
      // SETTINGS_MAX_CONCURRENT_STREAMS (HAProxy's and Envoy's edge default): a proxy needs a Watch and a renewal.
      'grpc.max_concurrent_streams': 100,
      // grpc-js otherwise lifts Node's per-session memory bound entirely (MB, as Node's maxSessionMemory).
      'grpc-node.max_session_memory': 10,
      // A connection with no call in progress for 60 s is closed (GOAWAY): this also bounds a client that sends the
      // preface and never a call, or trickles a call's headers (grpc-js has no headers timeout). A proxy's Watch
      // keeps its connection busy; others reconnect on their next call.
      'grpc.max_connection_idle_ms': 60_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.keepalive_time_ms': (opts.keepalive ?? SERVER_KEEPALIVE).timeMs,
      'grpc.keepalive_timeout_ms': (opts.keepalive ?? SERVER_KEEPALIVE).timeoutMs,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      // A request grpc-js refuses to read (over maxReceiveBytes, not inflating, a second or missing message on a
      // single-request method) reaches the handler as a RejectedMessage, like one over its own cap.
      interceptors: [(method, call) => new ReadRefusalCall(method, call, ISSUANCE_READ_REFUSALS, (code) => toGrpcError(new TesseraError(code)))],
    });
  }

  /** Adds a service to the gRPC server, its methods known as served. */
  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    for (const m of Object.values(service)) this.#served.add(m.path);
    this.grpc.addService(service, implementation);
  }

  /** The certificate chain the caller of this call presented (empty when none). */
  chainOf(call: { getPeer(): string }): Buffer[] {
    return this.#connections.get(call.getPeer())?.chain ?? [];
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    const a = parseAddress(this.#o.listen)!;
    return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${this.#port}`;
  }

  /** Handshaken connections. */
  get connections(): number {
    return this.#secured().length;
  }

  async start(): Promise<void> {
    const addr = parseAddress(this.#o.listen);
    if (!addr) throw new TesseraError('TESSERA_ERR_CP_LISTEN_FAILED', `bad listen address ${this.#o.listen}`);
    const { injector, guard } = GrpcSessionGuard.injector(this.grpc, grpc.ServerCredentials.createInsecure(), {
      timers: this.#o.timers,
      onRejected: (reason) => this.#o.onRejected?.(reason),
      served: (path) => this.#served.has(path),
      // A connection is busy while a call is in progress on it, idle again when none is (audit 60g F1: busy for good
      // after one call, a connection kept its place at the cap however long it sat idle).
      // Its first call's headers complete, whatever the method (audit 61b F4: cleared by grpc-js's interceptor, which
      // runs only for methods it serves, a connection of thousands of unknown calls was cut as a headers_timeout).
      onActivity: (peer, busy) => {
        const connection = this.#connections.get(peer);
        if (busy) this.#callStarted(connection);
        const place = connection?.place;
        if (busy) place?.busy();
        else place?.idle();
      },
      messages: { timeoutMs: this.#o.headersTimeoutMs, maxMessageBytes: this.#o.maxReceiveBytes, nowMs: this.#o.nowMs },
    });
    this.#injector = injector;
    this.#guard = guard;
    const tls = createServer({ ...this.#contextOptions(this.#o.identity), handshakeTimeout: this.#o.handshakeTimeoutMs });
    // A call in progress is never closed to make room (a proxy's Watch lasts hours): no grace ends it.
    const table = new ConnectionTable({ max: this.#o.maxConnections, busyGraceMs: Number.POSITIVE_INFINITY, clock: { nowMs: this.#o.nowMs } });
    tls.on('connection', (raw: Socket) => this.#admit(table, raw));
    tls.on('secureConnection', (socket: TLSSocket) => this.#accept(socket));
    tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      socket.destroy();
      // The TLS socket's TCP socket (node:tls keeps it as _parent): one closed to make room is counted already.
      const raw = (socket as unknown as { readonly _parent?: Socket | null })._parent;
      if (raw && this.#evicted.has(raw)) return;
      const reason = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'timeout' : 'protocol';
      this.#o.onTlsFailure?.(reason, `${socket.remoteAddress}:${socket.remotePort}`);
    });
    await new Promise<void>((resolve, reject) => {
      tls.once('error', (e: NodeJS.ErrnoException) => reject(new TesseraError('TESSERA_ERR_CP_LISTEN_FAILED', `${this.#o.listen}: ${e.code ?? e.message}`)));
      tls.listen(addr.port, addr.host, () => resolve());
    });
    this.#tls = tls;
    this.#port = (tls.address() as { port: number }).port;
  }

  /** New handshakes use the new identity and client CAs; open connections keep theirs. */
  updateIdentity(identity: ServerIdentity): void {
    this.#tls?.setSecureContext({ ...this.#contextOptions(identity), ticketKeys: this.#tls.getTicketKeys() });
  }

  /** Stops accepting, lets calls finish for up to graceMs, then closes everything. */
  async stop(graceMs: number): Promise<void> {
    const tls = this.#tls;
    const closed = tls ? new Promise<void>((r) => tls.close(() => r())) : Promise.resolve();
    // GOAWAY on every connection: each closes once its calls are answered. What is waited for is our own sockets
    // closing, not grpc-js's tryShutdown: the injector's drain has marked its sessions closed, so tryShutdown called
    // back at once and the sockets were cut under calls still answering (an outside audit: 60 SVIDs signed, their
    // join tokens spent, every answer lost).
    this.#injector?.drain(graceMs);
    this.grpc.tryShutdown(() => {});
    await this.#socketsClosed(graceMs);
    this.grpc.forceShutdown();
    this.#injector?.destroy();
    this.#guard?.stop();
    for (const s of this.#secured()) s.destroy();
    await closed;
  }

  #secured(): TLSSocket[] {
    const sockets: TLSSocket[] = [];
    for (const c of this.#connections.values()) if (c.secure) sockets.push(c.secure);
    return sockets;
  }

  /** Resolves once every connection has closed, or after `ms`. */
  #socketsClosed(ms: number): Promise<void> {
    const open = this.#secured();
    if (open.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = open.length;
      const t = this.#o.timers.setTimeout(resolve, ms, 'keep-alive');
      for (const s of open) {
        s.once('close', () => {
          if (--left > 0) return;
          this.#o.timers.clearTimeout(t);
          resolve();
        });
      }
    });
  }

  #contextOptions(id: ServerIdentity) {
    return {
      cert: id.certChainPem,
      key: id.keyPem,
      ca: id.clientCasPem,
      // Client certificates are optional (first attestation has none) and judged per call, not by node:tls.
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2' as const,
      ciphers: TLS_CIPHERS,
      // No session resumption: every connection presents its certificate afresh.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    };
  }

  /** A TCP connection, before its handshake: a place in the table, or closed (none can be made). */
  #admit(table: ConnectionTable, raw: Socket): void {
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    let entry: PeerConnection | undefined;
    const place = table.admit(
      () => {
        // This one makes room: counted by the newcomer, and, closed in its handshake, no handshake failure too.
        this.#evicted.add(raw);
        (entry?.secure ?? raw).destroy();
      },
      () => this.#o.onTlsFailure?.('max_connections', key),
    );
    if (!place) {
      this.#evicted.add(raw); // counted here, not again as a failed handshake
      this.#o.onTlsFailure?.('max_connections', key);
      raw.destroy();
      return;
    }
    const admitted: PeerConnection = { place, chain: [] };
    entry = admitted;
    this.#connections.set(key, admitted);
    raw.once('close', () => this.#closed(key, admitted));
  }

  /** Its TCP or its TLS socket closed (whichever is first; the second finds nothing left to do). */
  #closed(key: string, connection: PeerConnection): void {
    connection.place.closed();
    this.#callStarted(connection);
    if (this.#connections.get(key) === connection) this.#connections.delete(key);
  }

  #callStarted(connection: PeerConnection | undefined): void {
    if (connection?.firstCall === undefined) return;
    this.#o.timers.clearTimeout(connection.firstCall);
    connection.firstCall = undefined;
  }

  #accept(socket: TLSSocket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    refuseRenegotiation(socket, () => this.#o.onTlsFailure?.('protocol', key));
    const entry = this.#connections.get(key);
    // Closed while its handshake finished (its TCP socket's close has run): nothing to serve.
    if (!entry) return void socket.destroy();
    if (socket.alpnProtocol !== 'h2') {
      this.#o.onTlsFailure?.('alpn', key);
      socket.destroy();
      return;
    }
    // Resets after the handshake are ordinary; the HTTP/2 session reports what matters.
    socket.on('error', () => {});
    entry.chain = peerChainDer(socket.getPeerCertificate(true));
    entry.secure = socket;
    socket.once('close', () => this.#closed(key, entry));
    entry.place.secured();
    // A client that trickles its first call's headers (or never sends one) would hold the connection until the
    // 60 s idle close, or forever while it keeps a header block open: cut it at the headers deadline.
    entry.firstCall = this.#o.timers.setTimeout(() => {
      entry.firstCall = undefined;
      this.#o.onTlsFailure?.('headers_timeout', key);
      socket.destroy();
    }, this.#o.headersTimeoutMs);
    this.#injector!.injectConnection(socket);
  }
}
