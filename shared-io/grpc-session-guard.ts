// The control-traffic bound (h2-frame-budget.ts) on the HTTP/2 sessions of a grpc-js server fed by a connection
// injector: the control plane's gRPC port and the Workload API socket. Without it a client, with no certificate on
// the control plane and any local uid on the socket, sent 171 M WINDOW_UPDATE frames in 9 s on one connection: never
// cut, the control plane at 78 % of a core and its SignSvid answers twice as slow, nothing counted (audit 53a F2).
// grpc-js keeps the HTTP/2 server behind an injector to itself and says nothing of its sessions: the server is read
// from the grpc-js Server's own table of them (http2Servers, grpc-js 1.x, pinned in package.json), and a start
// without it fails loudly rather than serving unguarded. Each session is then watched as the proxies' listeners
// watch theirs: a sweep every second cuts one past its budget with GOAWAY ENHANCE_YOUR_CALM, resets its open streams,
// and destroys it at the next sweep (held open that long so a client still writing reads the GOAWAY, not a TCP reset:
// h2-server-limits.ts); nghttp2's own flood and protocol-error closes are counted too. Request messages are timed and
// bounded here as well (grpc-message-framing.ts, audit 55c F1): one begun must arrive whole within the message
// deadline, else its stream is reset (CANCEL, at the sweep); the bytes of unfinished messages are bounded per
// connection and across the server, a stream whose DATA would pass either reset at once (REFUSED_STREAM when none of
// its messages was delivered yet). Resetting the stream is what frees grpc-js's buffer: its call goes with the stream.
// Each session's native handle is also held until its socket has closed (http2-handle-pins.ts, audit 58g): node:http2
// lets go of it once the session is destroyed, while the socket may still complete a write into it, and a GC in the
// JavaScript that completion calls freed the session under its own frame (SIGSEGV in Http2Session::OnStreamAfterWrite).
import { constants, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream, sensitiveHeaders } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { TesseraError } from '../common/errors.js';
import { type GrpcMessageFault, GrpcMessageFraming } from './grpc-message-framing.js';
import { FrameBudget } from './h2-frame-budget.js';
import { type H2SessionFault, sessionErrorReason } from './h2-session-error.js';
import { probeSessionSocket } from './h2-socket-probe.js';
import { Http2HandlePins } from './http2-handle-pins.js';
import type { Timers } from './timers.js';

/** A call to a method the server does not serve (grpc-js answers it UNIMPLEMENTED, and counts nothing). */
export type GrpcMethodFault = 'unknown_method';

export interface GrpcSessionGuardOptions {
  /** The sweep's interval runs here (unref'd in production). */
  readonly timers: Pick<Timers, 'setInterval' | 'clearInterval' | 'setTimeout'>;
  /**
   * A session cut for a flood (ours or nghttp2's) or closed by nghttp2 for a protocol error; a stream reset for a
   * request message not whole within its deadline, or whose bytes would pass the bounds; a call to a method
   * `served` does not name.
   */
  readonly onRejected: (reason: H2SessionFault | GrpcMessageFault | GrpcMethodFault) => void;
  /** The methods the server serves (`/package.Service/Method`); absent: every call is taken as served. */
  readonly served?: (path: string) => boolean;
  /**
   * A session's calls in progress went from none to some (`busy`), or back (the connection cap's view: a connection
   * with none may be closed to make room). `peer` is its socket's "address:port" (a Unix socket has none: read the
   * socket itself, node:http2's view of the one injected, whose properties are the injected socket's).
   */
  readonly onActivity?: (peer: string, busy: boolean, socket: object) => void;
  readonly messages: {
    /** A request message, once begun (the first one: from the call's HEADERS), must arrive whole within this. */
    readonly timeoutMs: number;
    /** The most grpc-js reads of one message (grpc.max_receive_message_length). */
    readonly maxMessageBytes: number;
    readonly nowMs: () => number;
  };
}

/** How often the budgets and message deadlines are read, and how long a cut session lingers after its GOAWAY. */
export const SWEEP_MS = 1_000;
/** Unfinished request messages' bytes one connection may have held, in messages of the largest size read. */
export const CONNECTION_HELD_MESSAGES = 2;
/** The same across all connections of the server. */
export const SERVER_HELD_MESSAGES = 64;

interface Watched {
  readonly budget: FrameBudget;
  /** Open streams, each with its request's framing (undefined once reset for its message). */
  readonly streams: Map<ServerHttp2Stream, GrpcMessageFraming | undefined>;
  /** Bytes of its streams' unfinished messages. */
  held: number;
  /** GOAWAY sent: destroyed at the next sweep. */
  cut: boolean;
}

export class GrpcSessionGuard {
  readonly #o: GrpcSessionGuardOptions;
  readonly #sessions = new Map<ServerHttp2Session, Watched>();
  /** Sweeps since the guard started, modulo the probe's period. */
  #sweeps = 0;
  /** Bytes of unfinished messages across every session. */
  #held = 0;
  /** Sessions' native handles, each held until its socket has closed (http2-handle-pins.ts). */
  readonly #pins: Http2HandlePins;
  #timer: unknown;

  private constructor(opts: GrpcSessionGuardOptions) {
    this.#o = opts;
    this.#pins = new Http2HandlePins(opts.timers);
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

  /** Bytes of unfinished request messages held now, all sessions (tests). */
  get heldBytes(): number {
    return this.#held;
  }

  /** Native session handles held now (tests). */
  get pinned(): number {
    return this.#pins.size;
  }

  /** Stops the sweep (the server is closing; its sessions go with it). */
  stop(): void {
    if (this.#timer !== undefined) this.#o.timers.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #watch(session: ServerHttp2Session): void {
    const w: Watched = { budget: new FrameBudget(session), streams: new Map(), held: 0, cut: false };
    this.#sessions.set(session, w);
    this.#pins.pin(session);
    session.on('stream', (stream: ServerHttp2Stream, headers: Record<string | symbol, unknown>, _f: unknown, raw: string[] | undefined) => {
      // Framing first, so the budget (wrapping it) still counts the DATA of a stream reset here as a request's.
      this.#frame(stream, w);
      w.budget.stream(stream, raw, headers[sensitiveHeaders] as string[] | undefined);
      if (this.#o.served && !this.#o.served(String(headers[':path']))) this.#o.onRejected('unknown_method');
      if (w.streams.size === 1) this.#activity(session, true);
      stream.once('close', () => {
        this.#release(stream, w);
        if (w.streams.size === 0) this.#activity(session, false);
      });
    });
    session.on('error', (err) => {
      const reason = w.cut ? undefined : sessionErrorReason(err);
      if (reason) this.#o.onRejected(reason);
    });
    session.once('close', () => {
      for (const stream of [...w.streams.keys()]) this.#release(stream, w);
      this.#sessions.delete(session);
      if (this.#sessions.size === 0) this.stop();
    });
    this.#timer ??= this.#o.timers.setInterval(() => this.#sweep(), SWEEP_MS);
  }

  #activity(session: ServerHttp2Session, busy: boolean): void {
    const report = this.#o.onActivity;
    if (!report) return;
    try {
      const s = session.socket;
      report(`${s.remoteAddress}:${s.remotePort}`, busy, s);
    } catch {
      // The session has let go of its socket: the connection is closing anyway.
    }
  }

  /** Follows the stream's request framing as node:http2 pushes its DATA; past a bound, resets it and drops the DATA. */
  #frame(stream: ServerHttp2Stream, w: Watched): void {
    const { maxMessageBytes, nowMs } = this.#o.messages;
    // A request message must follow HEADERS that did not end the stream: it is timed from them.
    w.streams.set(stream, new GrpcMessageFraming(maxMessageBytes, stream.endAfterHeaders ? undefined : nowMs()));
    /** False once the stream is reset (the chunk must not be handed on). */
    const take = (chunk: Uint8Array): boolean => {
      const f = w.streams.get(stream);
      if (f === undefined) return false;
      const before = f.heldBytes;
      f.write(chunk, nowMs());
      const delta = f.heldBytes - before;
      if (delta > 0 && (w.held + delta > CONNECTION_HELD_MESSAGES * maxMessageBytes || this.#held + delta > SERVER_HELD_MESSAGES * maxMessageBytes)) {
        // Nothing of this stream was delivered yet: REFUSED_STREAM tells the client it may safely retry.
        this.#reset(stream, w, before, 'message_bytes', f.completed === 0 ? constants.NGHTTP2_REFUSED_STREAM : constants.NGHTTP2_CANCEL);
        return false;
      }
      w.held += delta;
      this.#held += delta;
      return true;
    };
    // DATA read with the stream's HEADERS (the same socket read) was pushed before the 'stream' event: still buffered
    // (grpc-js pauses its stream at once), the last readableLength bytes of the buffer's entries.
    const buffered = [...((stream as unknown as { readableBuffer: Iterable<unknown> }).readableBuffer ?? [])].filter((c): c is Uint8Array => c instanceof Uint8Array);
    let skip = buffered.reduce((n, c) => n + c.length, 0) - stream.readableLength;
    for (const c of buffered) {
      const fresh = skip >= c.length ? undefined : c.subarray(Math.max(skip, 0));
      skip -= c.length;
      if (fresh && !take(fresh)) break;
    }
    const push = stream.push;
    stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (!(chunk instanceof Uint8Array)) return push.call(stream, chunk, encoding);
      return take(chunk) ? push.call(stream, chunk, encoding) : false;
    };
  }

  /** A closed stream's unfinished message is no longer held. */
  #release(stream: ServerHttp2Stream, w: Watched): void {
    const f = w.streams.get(stream);
    w.streams.delete(stream);
    if (f === undefined) return;
    w.held -= f.heldBytes;
    this.#held -= f.heldBytes;
  }

  /** Counted once; what the stream held (`held` bytes) is released, its DATA from now on dropped. */
  #reset(stream: ServerHttp2Stream, w: Watched, held: number, reason: GrpcMessageFault, code: number): void {
    w.held -= held;
    this.#held -= held;
    w.streams.set(stream, undefined);
    this.#o.onRejected(reason);
    w.budget.reset(stream);
    stream.close(code);
  }

  #sweep(): void {
    const now = this.#o.messages.nowMs();
    const deadline = this.#o.messages.timeoutMs;
    // Every other sweep, each session's socket is asked to read, destroyed sessions' too (until their 'close'): over
    // TLS, node:http2 misses a client's reset that fails one of its writes, and then keeps the session, or the socket
    // of one it destroyed, for good (h2-socket-probe.ts; audits 60b F1, 60f F1).
    this.#sweeps = (this.#sweeps + 1) % 2;
    const probe = this.#sweeps === 0;
    for (const [session, w] of this.#sessions) {
      if (probe) probeSessionSocket(session);
      if (session.destroyed) continue;
      // The last GOAWAY the client reads says why too (a bare destroy() sends another, NO_ERROR).
      if (w.cut) session.destroy(new Error('http2_flood'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
      else if (w.budget.exceeded) this.#cut(session, w);
      else {
        for (const [stream, f] of w.streams) {
          const started = f?.startedMs;
          if (f === undefined || started === undefined || now - started < deadline) continue;
          this.#reset(stream, w, f.heldBytes, 'message_timeout', constants.NGHTTP2_CANCEL);
        }
      }
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
    for (const s of [...w.streams.keys()]) s.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}
