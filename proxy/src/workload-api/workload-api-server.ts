// The SPIFFE Workload API (service SpiffeWorkloadAPI) on a Unix socket any uid may connect to (its directory
// decides who reaches it): X.509 SVID and bundle streams that push the complete state on every rotation; the JWT
// calls (jwt-svid-calls.ts) when the identity comes from a control plane, else Unimplemented; every call must
// carry the `workload.spiffe.io: true` header or gets InvalidArgument. A request that does not decode (malformed
// protobuf, a string that is not UTF-8, not inflating, two messages or none on a single-request method) gets
// InvalidArgument too, as the spec and go-spiffe answer, not grpc-js's INTERNAL; one over maxReceiveBytes gets
// ResourceExhausted (TESSERA_ERR_WORKLOAD_API_REQUEST_TOO_LARGE), as the control plane answers one over its cap.
// A connection's control traffic is bounded as on every HTTP/2 server of Tessera (shared-io/grpc-session-guard.ts).
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import { WORKLOAD_API_PROTO, WORKLOAD_API_SERVICE } from '../../../common/contract/spiffe-workload.js';
import { describeError, type ErrorCode, TesseraError } from '../../../common/errors.js';
import type { GrpcMessageFault } from '../../../shared-io/grpc-message-framing.js';
import { type GrpcMethodFault, GrpcSessionGuard } from '../../../shared-io/grpc-session-guard.js';
import { guardedService, RejectedMessage } from '../../../shared-io/guarded-service.js';
import type { H2SessionFault } from '../../../shared-io/h2-session-error.js';
import { makeDirsSync } from '../../../shared-io/make-dirs.js';
import { loadProtoFile, serviceAt } from '../../../shared-io/proto-loader.js';
import { ReadRefusalCall } from '../../../shared-io/read-refusal.js';
import type { Timers } from '../../../shared-io/timers.js';
import { WorkloadJwtCalls, type WorkloadJwtSource } from './jwt-svid-calls.js';
import { StateStreams } from './state-streams.js';
import { type WorkloadIdentityFeed, x509BundlesResponse, x509SvidResponse } from './workload-api-messages.js';
import { type WorkloadConnectionFault, WorkloadConnections } from './workload-connections.js';

export const SECURITY_HEADER = 'workload.spiffe.io';

export interface WorkloadApiLimits {
  readonly maxConnections: number;
  readonly firstCallMs: number;
  readonly maxConcurrentStreams: number;
  readonly idleMs: number;
  readonly maxReceiveBytes: number;
  readonly maxSessionMemoryMb: number;
  readonly messageTimeoutMs: number;
}

/**
 * Bounds of the socket: any process that reaches it (0666 by design) could otherwise open streams without end
 * (240,000 that never read took a proxy to 1.7 GB), hold every descriptor the proxy has (its admin port and mTLS
 * listeners then stop accepting), or leave requests one byte short on every stream it may open (each buffered up to
 * the request bound: 250 connections x 100 streams x 64 KiB took a proxy to 1.9 GB). A pod's workloads need a
 * handful of connections, each a stream or three: so the product of the three bounds is ~20 MB.
 */
/** Codes of a request that could not be read: over maxReceiveBytes, and any other (shared-io/read-refusal.ts). */
const READ_REFUSALS = { tooLarge: 'TESSERA_ERR_WORKLOAD_API_REQUEST_TOO_LARGE', malformed: 'TESSERA_ERR_PROTO_MALFORMED' } as const;

export const WORKLOAD_API_LIMITS: WorkloadApiLimits = Object.freeze({
  /** Connections at once; at the cap one that asked nothing (else idle) makes room (workload-connections.ts). */
  maxConnections: 64,
  /** A connection's first call must start (its headers complete) within this of connecting. */
  firstCallMs: 10_000,
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  maxConcurrentStreams: 16,
  /** A connection with no call in progress this long is closed (GOAWAY); also one that never makes a call. */
  idleMs: 60_000,
  /** The largest request read (FetchJWTSVID's 16 audiences of 256 bytes; a token to validate of 16 KiB). */
  maxReceiveBytes: 20 * 1024,
  /** Node's HTTP/2 session memory bound, MB (grpc-js lifts it otherwise). */
  maxSessionMemoryMb: 10,
  /**
   * A request message, once begun, must arrive whole within this (shared-io/grpc-session-guard.ts, which also bounds
   * unfinished messages' bytes: 2 x maxReceiveBytes per connection, 64 x across the socket).
   */
  messageTimeoutMs: 10_000,
});

export interface WorkloadApiServerOptions {
  readonly socketPath: string;
  readonly feed: WorkloadIdentityFeed;
  /** JWT-SVIDs and JWT bundles (a control-plane identity); absent: the JWT calls answer Unimplemented. */
  readonly jwt?: WorkloadJwtSource;
  /** WORKLOAD_API_LIMITS unless given (tests). */
  readonly limits?: Partial<WorkloadApiLimits>;
  /**
   * The silent-connection cut and close()'s deadline run here, both holding the process while they wait; and the
   * sessions' flood sweep (unref'd).
   */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval'>;
  /** Called for every refused or failed call (metric/log hook); never sees key material. */
  readonly onEvent?: (event: { method: string; outcome: 'ok' | 'invalid_argument' | 'malformed' | 'too_large' | 'unavailable' | 'unimplemented' }) => void;
  /**
   * A connection cut for a flood of frames (WINDOW_UPDATE, PING, ...) or closed for an HTTP/2 protocol error; a
   * stream reset for a request message not whole within messageTimeoutMs, or past the bounds on unfinished bytes.
   */
  readonly onRejected?: (reason: H2SessionFault | GrpcMessageFault | GrpcMethodFault | WorkloadConnectionFault) => void;
  /** Reads the message deadline. */
  readonly nowMs: () => number;
}

type Stream = grpc.ServerWritableStream<unknown, unknown>;

export class WorkloadApiServer {
  readonly socketPath: string;
  readonly #feed: WorkloadIdentityFeed;
  readonly #onEvent: NonNullable<WorkloadApiServerOptions['onEvent']>;
  readonly #limits: WorkloadApiLimits;
  readonly #timers: WorkloadApiServerOptions['timers'];
  readonly #nowMs: () => number;
  readonly #server: grpc.Server;
  readonly #sockets = new Set<Socket>();
  /** Our own listener on the socket (grpc-js's has no connection cap), handing each connection to grpc-js. */
  #listener: NetServer | undefined;
  #injector: grpc.ConnectionInjector | undefined;
  #guard: GrpcSessionGuard | undefined;
  readonly #onRejected: NonNullable<WorkloadApiServerOptions['onRejected']>;
  /** FetchX509SVID and FetchX509Bundles streams: a client that does not read gets the newest state once it drains. */
  readonly #svidStreams: StateStreams<Stream>;
  readonly #bundleStreams: StateStreams<Stream>;
  readonly #jwt: WorkloadJwtCalls | undefined;
  #unsubscribe: (() => void) | undefined;

  private constructor(opts: WorkloadApiServerOptions) {
    this.socketPath = resolve(opts.socketPath);
    this.#feed = opts.feed;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#onRejected = opts.onRejected ?? (() => {});
    this.#jwt = opts.jwt ? new WorkloadJwtCalls(opts.jwt) : undefined;
    this.#svidStreams = new StateStreams(() => {
      const identity = this.#feed.current();
      return identity ? x509SvidResponse(identity) : undefined;
    });
    this.#bundleStreams = new StateStreams(() => {
      const identity = this.#feed.current();
      return identity ? x509BundlesResponse(identity) : undefined;
    });
    const l: WorkloadApiLimits = { ...WORKLOAD_API_LIMITS, ...opts.limits };
    this.#limits = l;
    this.#timers = opts.timers;
    this.#nowMs = opts.nowMs;
    this.#server = new grpc.Server({
      'grpc.max_concurrent_streams': l.maxConcurrentStreams,
      'grpc-node.max_session_memory': l.maxSessionMemoryMb,
      'grpc.max_connection_idle_ms': l.idleMs,
      'grpc.max_receive_message_length': l.maxReceiveBytes,
      // A request grpc-js will not read (over maxReceiveBytes, not inflating, a second or no message on a
      // single-request method) reaches the handler as a RejectedMessage too, not grpc-js's own answer.
      interceptors: [(method, call) => new ReadRefusalCall(method, call, READ_REFUSALS, (code) => this.#refusal(method.path.slice(method.path.lastIndexOf('/') + 1), code))],
    });
  }

  /** Binds the socket (replacing a stale socket file, never another kind of file) and starts serving. */
  static async start(opts: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
    const s = new WorkloadApiServer(opts);
    await s.#listen();
    return s;
  }

  /** Open FetchX509SVID + FetchX509Bundles streams. */
  get openStreams(): number {
    return this.#svidStreams.size + this.#bundleStreams.size + (this.#jwt?.openStreams ?? 0);
  }

  async #listen(): Promise<void> {
    ensureSocketDir(dirname(this.socketPath));
    removeStaleSocket(this.socketPath);
    // A request that does not decode reaches its handler as a RejectedMessage (#checkRequest), not grpc-js's INTERNAL.
    const service = guardedService(serviceAt(loadProtoFile(WORKLOAD_API_PROTO), WORKLOAD_API_SERVICE).service, { malformed: 'TESSERA_ERR_PROTO_MALFORMED' });
    const unimplemented = (name: string) => (call: grpc.ServerUnaryCall<unknown, unknown> | Stream, cb?: grpc.sendUnaryData<unknown>) => {
      const status = this.#checkRequest(name, call) ?? { code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented: JWT-SVIDs need an identity from a control plane (identity.controlPlane)` };
      if (status.code === grpc.status.UNIMPLEMENTED) this.#onEvent({ method: name, outcome: 'unimplemented' });
      if (cb) cb(status);
      else (call as Stream).emit('error', status);
    };
    this.#server.addService(service, {
      FetchX509SVID: (call: Stream) => this.#openStream('FetchX509SVID', call, this.#svidStreams),
      FetchX509Bundles: (call: Stream) => this.#openStream('FetchX509Bundles', call, this.#bundleStreams),
      ...(this.#jwt ? this.#jwtHandlers(this.#jwt) : { FetchJWTSVID: unimplemented('FetchJWTSVID'), FetchJWTBundles: unimplemented('FetchJWTBundles'), ValidateJWTSVID: unimplemented('ValidateJWTSVID') }),
    });
    const connections = new WorkloadConnections({ max: this.#limits.maxConnections, firstCallMs: this.#limits.firstCallMs, clock: { nowMs: this.#nowMs }, timers: this.#timers, onRefused: (reason) => this.#onRejected(reason) });
    const served = new Set(Object.values(service).map((m) => m.path));
    const { injector, guard } = GrpcSessionGuard.injector(this.#server, grpc.ServerCredentials.createInsecure(), {
      timers: this.#timers,
      onRejected: (reason) => this.#onRejected(reason),
      served: (path) => served.has(path),
      onActivity: (_peer, busy, socket) => connections.activity(socket, busy),
      messages: { timeoutMs: this.#limits.messageTimeoutMs, maxMessageBytes: this.#limits.maxReceiveBytes, nowMs: this.#nowMs },
    });
    this.#guard = guard;
    const listener = createServer((socket) => {
      socket.on('error', () => undefined);
      if (!connections.admit(socket)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      // grpc-js's idle close starts with its HTTP/2 session: a connection that never sends a byte is cut by the
      // first-call deadline. Its first bytes are put back for node:http2, which reads what a socket has buffered
      // when it takes it over.
      socket.once('data', (first: Buffer) => {
        connections.started(socket);
        socket.pause();
        socket.unshift(first);
        injector.injectConnection(socket);
      });
    });
    await new Promise<void>((ok, fail) => {
      listener.once('error', (err) => fail(new TesseraError('TESSERA_ERR_WORKLOAD_API_SOCKET', `${this.socketPath}: ${err.message}`, {}, { cause: err })));
      listener.listen(this.socketPath, () => ok());
    });
    // Accept errors once listening (a descriptor limit) are not the process's end: the next accept goes on.
    listener.on('error', () => undefined);
    this.#listener = listener;
    this.#injector = injector;
    // SPIFFE convention: being able to reach the socket is the authorization. App containers run as other uids
    // than the sidecar, so the socket is connectable by all (connect needs write permission on it); what limits
    // who reaches it is the directory: in a pod, a volume only the pod's containers mount.
    chmodSync(this.socketPath, WORKLOAD_SOCKET_MODE);
    this.#unsubscribe = this.#feed.subscribe(() => this.#pushAll());
  }

  /** The JWT calls behind the security-header check. */
  #jwtHandlers(jwt: WorkloadJwtCalls): grpc.UntypedServiceImplementation {
    const unary = (name: string, h: (call: never, cb: never) => void) => (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const bad = this.#checkRequest(name, call);
      if (bad) return cb(bad);
      this.#onEvent({ method: name, outcome: 'ok' });
      h(call as never, cb as never);
    };
    return {
      FetchJWTSVID: unary('FetchJWTSVID', jwt.fetchJwtSvid),
      ValidateJWTSVID: unary('ValidateJWTSVID', jwt.validateJwtSvid),
      FetchJWTBundles: (call: Stream) => {
        const bad = this.#checkRequest('FetchJWTBundles', call);
        if (bad) {
          call.emit('error', bad);
          return;
        }
        this.#onEvent({ method: 'FetchJWTBundles', outcome: 'ok' });
        jwt.fetchJwtBundles(call as never);
      },
    };
  }

  /** A refusal of a request that did not decode, or lacks the security header; undefined for one to answer. */
  #checkRequest(method: string, call: { readonly request: unknown; readonly metadata: grpc.Metadata }): grpc.StatusObject | undefined {
    if (call.request instanceof RejectedMessage) return this.#refusal(method, call.request.code);
    const values = call.metadata.get(SECURITY_HEADER);
    if (values.length === 1 && values[0] === 'true') return undefined;
    this.#onEvent({ method, outcome: 'invalid_argument' });
    return { code: grpc.status.INVALID_ARGUMENT, details: `security header missing from request: ${SECURITY_HEADER}: true`, metadata: new grpc.Metadata() };
  }

  /** The answer to a request that could not be read (RejectedMessage), counted. */
  #refusal(method: string, code: ErrorCode): grpc.StatusObject {
    const tooLarge = code === READ_REFUSALS.tooLarge;
    this.#onEvent({ method, outcome: tooLarge ? 'too_large' : 'malformed' });
    // As the JWT calls' refusals: the code starts the message and travels in the metadata.
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_METADATA, code);
    const why = tooLarge ? `the request is larger than ${this.#limits.maxReceiveBytes} bytes` : 'the request is not a well-formed message of its type';
    return { code: tooLarge ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT, details: describeError(new TesseraError(code, `${method}: ${why}`)), metadata };
  }

  #openStream(method: string, call: Stream, streams: StateStreams<Stream>): void {
    const bad = this.#checkRequest(method, call);
    if (bad) {
      call.emit('error', bad);
      return;
    }
    const identity = this.#feed.current();
    if (!identity) {
      // The spec's retryable answer: the workload's client backs off and asks again.
      this.#onEvent({ method, outcome: 'unavailable' });
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'no identity issued yet; retry' });
      return;
    }
    this.#onEvent({ method, outcome: 'ok' });
    streams.open(call);
  }

  /** Pushes the complete new state to every open stream (one still behind gets the latest when it drains). */
  #pushAll(): void {
    this.#svidStreams.pushAll();
    this.#bundleStreams.pushAll();
  }

  /** Ends every stream (status OK), stops the server and removes the socket file. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#jwt?.close();
    this.#svidStreams.endAll();
    this.#bundleStreams.endAll();
    await new Promise<void>((ok) => {
      const force = this.#timers.setTimeout(
        () => {
          this.#server.forceShutdown();
          ok();
        },
        2_000,
        'keep-alive',
      );
      this.#server.tryShutdown(() => {
        this.#timers.clearTimeout(force);
        ok();
      });
    });
    this.#injector?.destroy();
    this.#guard?.stop();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((ok) => (this.#listener ? this.#listener.close(() => ok()) : ok()));
    removeStaleSocket(this.socketPath);
  }
}

export const WORKLOAD_SOCKET_MODE = 0o666;
/** A socket directory the sidecar creates: others may traverse it (to connect) but not replace the socket. */
export const WORKLOAD_DIR_MODE = 0o755;

/** Creates a missing socket directory (0755); an existing one is left as its owner set it. */
function ensureSocketDir(dir: string): void {
  if (existsSync(dir)) return;
  try {
    makeDirsSync(dir, WORKLOAD_DIR_MODE);
    chmodSync(dir, WORKLOAD_DIR_MODE); // mkdir's mode is masked by the umask
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_WORKLOAD_API_SOCKET', `workloadApi.socket: ${dir}: cannot create the socket directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {}, { cause: e });
  }
}

/** Unlinks a leftover socket at `path`; refuses to touch a regular file or directory there. */
function removeStaleSocket(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new TesseraError('TESSERA_ERR_WORKLOAD_API_SOCKET', `${path} exists and is not a socket: refusing to replace it`);
  unlinkSync(path);
}
