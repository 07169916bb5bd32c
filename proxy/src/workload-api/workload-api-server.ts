// The SPIFFE Workload API (service SpiffeWorkloadAPI) on a Unix socket any uid may connect to (its directory
// decides who reaches it): X.509 SVID and bundle streams that push the complete state on every rotation; the JWT
// calls (jwt-svid-calls.ts) when the identity comes from a control plane, else Unimplemented; every call must
// carry the `workload.spiffe.io: true` header or gets InvalidArgument.
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { WORKLOAD_API_PROTO, WORKLOAD_API_SERVICE } from '../../../common/contract/spiffe-workload.js';
import { TesseraError } from '../../../common/errors.js';
import { loadProtoFile, serviceAt } from '../../../shared-io/proto-loader.js';
import { WorkloadJwtCalls, type WorkloadJwtSource } from './jwt-svid-calls.js';
import { type WorkloadIdentityFeed, x509BundlesResponse, x509SvidResponse } from './workload-api-messages.js';

export const SECURITY_HEADER = 'workload.spiffe.io';

export interface WorkloadApiServerOptions {
  readonly socketPath: string;
  readonly feed: WorkloadIdentityFeed;
  /** JWT-SVIDs and JWT bundles (a control-plane identity); absent: the JWT calls answer Unimplemented. */
  readonly jwt?: WorkloadJwtSource;
  /** Called for every refused or failed call (metric/log hook); never sees key material. */
  readonly onEvent?: (event: { method: string; outcome: 'ok' | 'invalid_argument' | 'unavailable' | 'unimplemented' }) => void;
}

type Stream = grpc.ServerWritableStream<unknown, unknown>;

export class WorkloadApiServer {
  readonly socketPath: string;
  readonly #feed: WorkloadIdentityFeed;
  readonly #onEvent: NonNullable<WorkloadApiServerOptions['onEvent']>;
  readonly #server = new grpc.Server();
  readonly #svidStreams = new Set<Stream>();
  readonly #bundleStreams = new Set<Stream>();
  readonly #jwt: WorkloadJwtCalls | undefined;
  #unsubscribe: (() => void) | undefined;

  private constructor(opts: WorkloadApiServerOptions) {
    this.socketPath = resolve(opts.socketPath);
    this.#feed = opts.feed;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#jwt = opts.jwt ? new WorkloadJwtCalls(opts.jwt) : undefined;
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
    const service = serviceAt(loadProtoFile(WORKLOAD_API_PROTO), WORKLOAD_API_SERVICE).service;
    const unimplemented = (name: string) => (call: grpc.ServerUnaryCall<unknown, unknown> | Stream, cb?: grpc.sendUnaryData<unknown>) => {
      const status = this.#checkHeader(name, call.metadata) ?? { code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented: JWT-SVIDs need an identity from a control plane (identity.controlPlane)` };
      if (status.code === grpc.status.UNIMPLEMENTED) this.#onEvent({ method: name, outcome: 'unimplemented' });
      if (cb) cb(status);
      else (call as Stream).emit('error', status);
    };
    this.#server.addService(service, {
      FetchX509SVID: (call: Stream) => this.#openStream('FetchX509SVID', call, this.#svidStreams),
      FetchX509Bundles: (call: Stream) => this.#openStream('FetchX509Bundles', call, this.#bundleStreams),
      ...(this.#jwt ? this.#jwtHandlers(this.#jwt) : { FetchJWTSVID: unimplemented('FetchJWTSVID'), FetchJWTBundles: unimplemented('FetchJWTBundles'), ValidateJWTSVID: unimplemented('ValidateJWTSVID') }),
    });
    await new Promise<void>((ok, fail) => {
      this.#server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) return fail(new TesseraError('TESSERA_ERR_WORKLOAD_API_SOCKET', `${this.socketPath}: ${err.message}`, {}, { cause: err }));
        ok();
      });
    });
    // SPIFFE convention: being able to reach the socket is the authorization. App containers run as other uids
    // than the sidecar, so the socket is connectable by all (connect needs write permission on it); what limits
    // who reaches it is the directory: in a pod, a volume only the pod's containers mount.
    chmodSync(this.socketPath, WORKLOAD_SOCKET_MODE);
    this.#unsubscribe = this.#feed.subscribe(() => this.#pushAll());
  }

  /** The JWT calls behind the security-header check. */
  #jwtHandlers(jwt: WorkloadJwtCalls): grpc.UntypedServiceImplementation {
    const unary = (name: string, h: (call: never, cb: never) => void) => (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const bad = this.#checkHeader(name, call.metadata);
      if (bad) return cb(bad);
      h(call as never, cb as never);
    };
    return {
      FetchJWTSVID: unary('FetchJWTSVID', jwt.fetchJwtSvid),
      ValidateJWTSVID: unary('ValidateJWTSVID', jwt.validateJwtSvid),
      FetchJWTBundles: (call: Stream) => {
        const bad = this.#checkHeader('FetchJWTBundles', call.metadata);
        if (bad) call.emit('error', bad);
        else jwt.fetchJwtBundles(call as never);
      },
    };
  }

  #checkHeader(method: string, md: grpc.Metadata): grpc.StatusObject | undefined {
    const values = md.get(SECURITY_HEADER);
    if (values.length === 1 && values[0] === 'true') return undefined;
    this.#onEvent({ method, outcome: 'invalid_argument' });
    return { code: grpc.status.INVALID_ARGUMENT, details: `security header missing from request: ${SECURITY_HEADER}: true`, metadata: new grpc.Metadata() };
  }

  #openStream(method: string, call: Stream, set: Set<Stream>): void {
    const bad = this.#checkHeader(method, call.metadata);
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
    set.add(call);
    const drop = () => set.delete(call);
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    this.#onEvent({ method, outcome: 'ok' });
    this.#write(call, set);
  }

  #write(call: Stream, set: Set<Stream>): void {
    const identity = this.#feed.current();
    if (!identity || call.cancelled || call.writableEnded) return;
    call.write(set === this.#svidStreams ? x509SvidResponse(identity) : x509BundlesResponse(identity));
  }

  /** Pushes the complete new state to every open stream. */
  #pushAll(): void {
    for (const call of this.#svidStreams) this.#write(call, this.#svidStreams);
    for (const call of this.#bundleStreams) this.#write(call, this.#bundleStreams);
  }

  /** Ends every stream (status OK), stops the server and removes the socket file. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#jwt?.close();
    for (const call of [...this.#svidStreams, ...this.#bundleStreams]) if (!call.writableEnded) call.end();
    this.#svidStreams.clear();
    this.#bundleStreams.clear();
    await new Promise<void>((ok) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        ok();
      }, 2_000);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        ok();
      });
    });
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
    mkdirSync(dir, { recursive: true, mode: WORKLOAD_DIR_MODE });
    chmodSync(dir, WORKLOAD_DIR_MODE); // mkdir's mode is masked by the umask
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_WORKLOAD_API_SOCKET', `${dir}: cannot create the socket directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {}, { cause: e });
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
