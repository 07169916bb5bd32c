// The control-traffic bound (h2-frame-budget.ts) on the HTTP/2 sessions of a grpc-js server fed by a connection
// injector: the control plane's gRPC port and the Workload API socket. Without it a client, with no certificate on
// the control plane and any local uid on the socket, sent 171 M WINDOW_UPDATE frames in 9 s on one connection: never
// cut, the control plane at 78 % of a core and its SignSvid answers twice as slow, nothing counted (audit 53a F2).
// grpc-js keeps the HTTP/2 server behind an injector to itself and says nothing of its sessions: the server is read
// from the grpc-js Server's own table of them (http2Servers, grpc-js 1.x, pinned in package.json), and a start
// without it fails loudly rather than serving unguarded. Each session is then watched as the proxies' listeners
// watch theirs: a sweep every second cuts one past its budget with GOAWAY ENHANCE_YOUR_CALM, resets its open streams,
// and destroys it at the next sweep (held open that long so a client still writing reads the GOAWAY, not a TCP reset:
// h2-server-limits.ts); nghttp2's own flood and protocol-error closes are counted too.
import { type Http2Server, type ServerHttp2Session, type ServerHttp2Stream, constants, sensitiveHeaders } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { TesseraError } from '../common/errors.js';
import { FrameBudget } from './h2-frame-budget.js';
import { type H2SessionFault, sessionErrorReason } from './h2-session-error.js';
import type { Timers } from './timers.js';

export interface GrpcSessionGuardOptions {
  /** The sweep's interval runs here (unref'd in production). */
  readonly timers: Pick<Timers, 'setInterval' | 'clearInterval'>;
  /** A session cut for a flood (ours or nghttp2's) or closed by nghttp2 for a protocol error. */
  readonly onRejected: (reason: H2SessionFault) => void;
}

/** How often the budgets are read, and how long a cut session lingers after its GOAWAY. */
export const SWEEP_MS = 1_000;

interface Watched {
  readonly budget: FrameBudget;
  readonly streams: Set<ServerHttp2Stream>;
  /** GOAWAY sent: destroyed at the next sweep. */
  cut: boolean;
}

export class GrpcSessionGuard {
  readonly #o: GrpcSessionGuardOptions;
  readonly #sessions = new Map<ServerHttp2Session, Watched>();
  #timer: unknown;

  private constructor(opts: GrpcSessionGuardOptions) {
    this.#o = opts;
  }

  /** grpc-js's connection injector for `server`, every session of which the returned guard watches. */
  static injector(server: grpc.Server, credentials: grpc.ServerCredentials, opts: GrpcSessionGuardOptions): { injector: grpc.ConnectionInjector; guard: GrpcSessionGuard } {
    const injector = server.createConnectionInjector(credentials);
    const guard = new GrpcSessionGuard(opts);
    // The injector's server is the one grpc-js added last to its table.
    const table = (server as unknown as { http2Servers?: unknown }).http2Servers;
    const h2 = table instanceof Map ? ([...table.keys()].at(-1) as Http2Server | undefined) : undefined;
    if (typeof h2?.on !== 'function' || h2.listenerCount('session') === 0) {
      injector.destroy();
      throw new TesseraError('TESSERA_ERR_GRPC_SESSIONS_UNREACHABLE', 'grpc-js no longer shows the HTTP/2 server behind its connection injector: its sessions cannot be bounded');
    }
    h2.on('session', (session: ServerHttp2Session) => guard.#watch(session));
    return { injector, guard };
  }

  /** Sessions watched now (tests). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Stops the sweep (the server is closing; its sessions go with it). */
  stop(): void {
    if (this.#timer !== undefined) this.#o.timers.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #watch(session: ServerHttp2Session): void {
    const w: Watched = { budget: new FrameBudget(session), streams: new Set(), cut: false };
    this.#sessions.set(session, w);
    session.on('stream', (stream: ServerHttp2Stream, headers: Record<string | symbol, unknown>, _f: unknown, raw: string[] | undefined) => {
      w.budget.stream(stream, raw, headers[sensitiveHeaders] as string[] | undefined);
      w.streams.add(stream);
      stream.once('close', () => w.streams.delete(stream));
    });
    session.on('error', (err) => {
      const reason = w.cut ? undefined : sessionErrorReason(err);
      if (reason) this.#o.onRejected(reason);
    });
    session.once('close', () => {
      this.#sessions.delete(session);
      if (this.#sessions.size === 0) this.stop();
    });
    this.#timer ??= this.#o.timers.setInterval(() => this.#sweep(), SWEEP_MS);
  }

  #sweep(): void {
    for (const [session, w] of this.#sessions) {
      if (session.destroyed) continue;
      // The last GOAWAY the client reads says why too (a bare destroy() sends another, NO_ERROR).
      if (w.cut) session.destroy(new Error('http2_flood'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
      else if (w.budget.exceeded) this.#cut(session, w);
    }
  }

  /** GOAWAY ENHANCE_YOUR_CALM naming the last stream processed, every open stream reset with that code. */
  #cut(session: ServerHttp2Session, w: Watched): void {
    w.cut = true;
    this.#o.onRejected('http2_flood');
    try {
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, session.state.lastProcStreamID ?? 0);
    } catch {
      // Ending already (grpc-js's own close raced the sweep): nothing left to tell the client.
      return void session.destroy();
    }
    for (const s of [...w.streams]) s.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}
