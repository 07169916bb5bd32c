// The limits of an HTTP/2 server: what it advertises and enforces in SETTINGS (concurrent streams, header list
// size), and the deadlines of each session, checked by its listener's sweep (SessionSet): request headers must be
// complete within headersTimeout (the first request after the preface, and any HEADERS block once begun,
// CONTINUATION trickling included), and a session with no open stream for idleTimeout is closed. Node's own
// session timeout counts every frame as activity, so a client trickling bytes would never reach it. And a session
// whose client resets many of its streams before their answer is cut, or, a mesh peer's, drained (h2-reset-budget.ts);
// one whose control frames (WINDOW_UPDATE, PRIORITY) outgrow what it was sent is cut (shared-io/h2-frame-budget.ts).
// A cut session's socket is held open CUT_LINGER_MS after its GOAWAY (Envoy's delayed_close_timeout, for the same
// race): closed at once, it had unread frames of a client still writing, the kernel answered with a TCP reset, and a
// client whose next write met that reset lost the GOAWAY unread (EPIPE, never ENHANCE_YOUR_CALM). Held, the client's
// writes land in the socket's receive buffer (nghttp2 stops reading once nothing is open) and it reads the GOAWAY.
import { constants, type ServerHttp2Session, type ServerHttp2Stream, type ServerOptions, sensitiveHeaders } from 'node:http2';
import { FrameBudget } from '../../../shared-io/h2-frame-budget.js';
import { sessionErrorReason } from '../../../shared-io/h2-session-error.js';
import { probeSessionSocket } from '../../../shared-io/h2-socket-probe.js';
import type { ProxyLimits } from '../config/proxy-config.js';
import { cutStream } from '../h2/stream-cut.js';
import { type ResetAction, ResetBudget } from './h2-reset-budget.js';
import type { Expirable, SessionSet } from './session-set.js';

/**
 * Server options every h2 listener shares. Streams beyond maxConcurrentStreams are refused (RST_STREAM
 * REFUSED_STREAM) by nghttp2, each one a frame Node counts as invalid; after MAX_REFUSED_FRAMES of them the session
 * is closed (Node's maxSessionRejectedStreams never sees nghttp2's refusals).
 */
/**
 * Frames a session may have refused (streams over the limit, malformed requests) before it is closed. Not 100: until
 * our SETTINGS reach it a client may assume no stream limit at all (RFC 9113 section 6.5.2), and one that opened
 * 250 streams in its first flight lost the whole session, the 100 already accepted and sent to the app included.
 * A client that acknowledged the SETTINGS and goes over them is a protocol error at once (nghttp2); each refusal is
 * one RST_STREAM, cheap for us. Node's own default.
 */
export const MAX_REFUSED_FRAMES = 1_000;

export function h2ServerOptions(limits: ProxyLimits, maxSessionMemoryMb: number): ServerOptions {
  return {
    maxSessionMemory: maxSessionMemoryMb,
    maxSessionInvalidFrames: MAX_REFUSED_FRAMES,
    maxHeaderListPairs: limits.maxHeaders,
    maxSendHeaderBlockLength: limits.maxHeaderBytes * 4,
    // A TLS client that negotiates no ALPN protocol is cut as soon as a slow handshake would be.
    unknownProtocolTimeout: limits.handshakeTimeoutMs,
    settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams, enablePush: false },
  };
}

/**
 * Tracks `session` in `sessions` with its deadlines and its premature-reset budget (`resets`: what a session past it
 * gets); `onExpire` counts the cut (headers_timeout, idle_timeout, premature_reset) and nghttp2's (http2_flood,
 * http2_protocol_error).
 */
export function watchH2Session(sessions: SessionSet, session: ServerHttp2Session, limits: ProxyLimits, nowMs: () => number, onExpire: (code: string) => void, resets: ResetAction): void {
  sessions.add(session, new H2SessionWatch(session, limits, nowMs, onExpire, resets));
}

/** How long a cut session's socket is held open after its GOAWAY before it is destroyed (the sweep's, so up to 1 s more). */
export const CUT_LINGER_MS = 1_000;

/** How often a session's socket is probed for a client that went away (h2-socket-probe.ts). */
export const SOCKET_PROBE_MS = 2_000;

type Code = 'headers_timeout' | 'idle_timeout' | 'premature_reset' | 'http2_flood' | 'http2_protocol_error';

export class H2SessionWatch implements Expirable {
  readonly #session: ServerHttp2Session;
  readonly #limits: Pick<ProxyLimits, 'headersTimeoutMs' | 'idleTimeoutMs'>;
  readonly #nowMs: () => number;
  readonly #onExpire: (code: Code) => void;
  readonly #startMs: number;
  readonly #resets: ResetBudget;
  readonly #frames: FrameBudget;
  #lastStreamId = 0;
  #open = 0;
  #idleSinceMs: number;
  #pendingId = 0;
  #pendingSinceMs = 0;
  #code: Code = 'headers_timeout';
  /** The open streams, each reset when the session is cut. */
  readonly #streams = new Set<ServerHttp2Stream>();
  /** When the session was cut (GOAWAY sent, lingering until the sweep destroys it), or -1. */
  #cutAtMs = -1;
  /** Cut by abort() with trailers still to go out: destroyed at the linger's end, with no error of its own. */
  #lingering = false;
  /** When its socket is next probed (probe()). */
  #probeAtMs = 0;

  /** `resets`: what the session gets past its premature-reset budget (h2-reset-budget.ts). */
  constructor(session: ServerHttp2Session, limits: Pick<ProxyLimits, 'headersTimeoutMs' | 'idleTimeoutMs' | 'maxConcurrentStreams'>, nowMs: () => number, onExpire: (code: Code) => void, resets: ResetAction = 'cut') {
    this.#session = session;
    this.#limits = limits;
    this.#nowMs = nowMs;
    this.#onExpire = onExpire;
    this.#startMs = nowMs();
    this.#idleSinceMs = this.#startMs;
    this.#resets = new ResetBudget(limits.maxConcurrentStreams, resets);
    this.#frames = new FrameBudget(session);
    session.on('stream', (stream: ServerHttp2Stream, headers: Record<string | symbol, unknown>, _f: unknown, raw: string[] | undefined) => this.#onStream(stream, raw, headers[sensitiveHeaders] as string[] | undefined));
    // nghttp2 closes the session itself on a flood or a protocol error; counted by reason like our own cuts.
    session.on('error', (err) => {
      const reason = sessionErrorReason(err);
      if (reason) this.#onExpire(reason);
    });
  }

  /** Closed (GOAWAY sent: its streams run to their end) or destroyed; one lingering after abort() is not, till destroyed. */
  get closed(): boolean {
    return this.#session.destroyed || (this.#session.closed && !this.#lingering);
  }

  /**
   * nghttp2 moves lastProcStreamID when a HEADERS frame of a new stream begins, and Node emits 'stream' only once
   * the whole header block has arrived: a higher lastProcStreamID than the last stream seen is a header block in
   * progress. (Streams refused by the concurrency cap do not move it; a request nghttp2 resets as malformed does,
   * so a client whose last request was malformed is closed after headersTimeout unless another request follows.)
   */
  get deadlineMs(): number {
    if (this.closed) return Number.POSITIVE_INFINITY;
    if (this.#cutAtMs >= 0) return this.#cutAtMs + CUT_LINGER_MS;
    // A control-frame flood (shared-io/h2-frame-budget.ts): due now, whatever else is open.
    if (this.#frames.exceeded) {
      this.#code = 'http2_flood';
      return 0;
    }
    this.#code = 'headers_timeout';
    if (this.#lastStreamId === 0) return this.#startMs + this.#limits.headersTimeoutMs;
    const inProgress = this.#session.state.lastProcStreamID ?? 0;
    if (inProgress > this.#lastStreamId) {
      if (this.#pendingId !== inProgress) {
        this.#pendingId = inProgress;
        this.#pendingSinceMs = this.#nowMs();
      }
      return this.#pendingSinceMs + this.#limits.headersTimeoutMs;
    }
    if (this.#open > 0) return Number.POSITIVE_INFINITY; // streams have their own request timeout
    this.#code = 'idle_timeout';
    return this.#idleSinceMs + this.#limits.idleTimeoutMs;
  }

  /**
   * At every sweep, whatever the session's state (streams open or none, drained, destroyed by node:http2 or by us
   * with a write of it hanging): every SOCKET_PROBE_MS its socket is asked to read, which surfaces a reset node:http2
   * missed (h2-socket-probe.ts). Without it such a socket stayed open for good, its connection slot taken: 300 TLS
   * clients that offered h2 and reset at once closed an edge listener (audit 60f F1).
   */
  probe(nowMs: number): void {
    if (nowMs < this.#probeAtMs) return;
    this.#probeAtMs = nowMs + SOCKET_PROBE_MS;
    probeSessionSocket(this.#session);
  }

  expire(): void {
    if (this.closed) return;
    if (this.#lingering) return void this.#session.destroy(); // trailers had CUT_LINGER_MS to go out
    if (this.#cutAtMs >= 0) return void this.#session.destroy(new Error('premature_reset'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
    this.#onExpire(this.#code);
    // A flood is cut as a rapid reset is, whatever the listener (a mesh peer's proxy sends no such flood for its clients).
    if (this.#code === 'http2_flood') return void this.#cut(this.#nowMs());
    this.abort(); // a header block overdue while other streams are open: those are reset too
  }

  /**
   * Cut on purpose (the drain deadline, a ban of its peer, a deadline): every open stream reset with CANCEL, or a gRPC
   * call ended with UNAVAILABLE trailers (stream-cut.ts), then the session destroyed: at once, or, with trailers to go
   * out, once its last stream has closed or CUT_LINGER_MS later (the sweep; a drain's own wait is as long). Destroyed
   * alone, node:http2 resets the open streams with NO_ERROR, and a client (the caller's proxy too) read one of them as
   * the end of a whole response: a truncated body, a gRPC call without status (audit 54c F1).
   */
  abort(): void {
    if (this.#session.destroyed) return; // a drained session is closed (GOAWAY sent) but its streams still run
    let flushing = false;
    for (const s of [...this.#streams]) flushing = cutStream(s) || flushing;
    if (!flushing) return void this.#session.destroy();
    this.#lingering = true;
    this.#cutAtMs = this.#nowMs();
    this.#goawayClose();
  }

  /** GOAWAY: open streams finish, new ones are refused. */
  drain(): void {
    if (this.#cutAtMs >= 0 || this.#session.destroyed) return;
    // Already closed by its server (node:http2's server.close() closes every session, GOAWAY sent with it, before the
    // listener's drain reaches here, in the same turn): marked with the same last stream id (audit 62m F1).
    if (this.#session.closed) markGoaway(this.#session, this.#session.state.lastProcStreamID ?? this.#lastStreamId);
    else this.#goawayClose();
  }

  /** GOAWAY NO_ERROR (node:http2's close: the last stream it names is the last one processed), marked as sent. */
  #goawayClose(): void {
    markGoaway(this.#session, this.#session.state.lastProcStreamID ?? this.#lastStreamId);
    this.#session.close();
  }

  #onStream(stream: ServerHttp2Stream, rawHeaders: string[] | undefined, sensitive: string[] | undefined): void {
    this.#frames.stream(stream, rawHeaders, sensitive);
    const id = stream.id ?? 0;
    if (id > this.#lastStreamId) this.#lastStreamId = id;
    this.#open++;
    this.#streams.add(stream);
    const startMs = this.#nowMs();
    stream.once('close', () => {
      const now = this.#nowMs();
      this.#streams.delete(stream);
      if (--this.#open === 0) this.#idleSinceMs = now;
      // Streams closed by the session's own end (a TCP reset, our cut, a drain) are not the client's choice.
      if (this.closed || this.#cutAtMs >= 0 || !this.#resets.closed(stream.headersSent, now - startMs)) return;
      this.#onExpire('premature_reset');
      // Cut (GOAWAY ENHANCE_YOUR_CALM, open streams reset), or drained (GOAWAY NO_ERROR, open streams run to their end).
      if (this.#resets.action === 'cut') this.#cut(now);
      else this.#goawayClose();
    });
  }

  /**
   * GOAWAY ENHANCE_YOUR_CALM naming the last stream processed, every open stream reset with that code; nghttp2 takes
   * no new stream after a GOAWAY. The sweep destroys the session CUT_LINGER_MS later.
   */
  #cut(now: number): void {
    this.#cutAtMs = now;
    const last = this.#session.state.lastProcStreamID ?? this.#lastStreamId;
    markGoaway(this.#session, last);
    this.#session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, last);
    for (const s of [...this.#streams]) s.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

/** The last stream id a GOAWAY of the session named, set as it is sent. */
const GOAWAY_LAST = Symbol('tessera.goawayLast');
type MarkedSession = ServerHttp2Session & { [GOAWAY_LAST]?: number };

function markGoaway(session: ServerHttp2Session, lastId: number): void {
  (session as MarkedSession)[GOAWAY_LAST] ??= lastId;
}

/**
 * A stream above the last one its session's GOAWAY named (it came in the same read as the cut, which nghttp2 still
 * delivers) is refused (REFUSED_STREAM), never forwarded: its client, told it was not processed, may send it again on
 * another connection, and a POST reached the app twice (RFC 9113 §6.8; audit 62l F1). Each listener's stream handler
 * asks this first.
 */
export function refusedPastGoaway(stream: ServerHttp2Stream): boolean {
  const last = (stream.session as MarkedSession | undefined)?.[GOAWAY_LAST];
  if (last === undefined || (stream.id ?? 0) <= last) return false;
  if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_REFUSED_STREAM);
  return true;
}
