// Long-lived, multiplexed HTTP/2 client sessions to an upstream (a peer proxy over mTLS, or the local app over
// h2c), opened lazily and shared by every stream; another is opened when each has as many streams as the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS allows, or 100 (so long-lived streams past the cap do not wait), and a session is
// forgotten when it closes or receives GOAWAY. After our identity changes (a new SVID or trust bundle) or once the
// peer's certificate has expired, a session takes no new stream: it is closed gracefully (GOAWAY, its open streams
// run to their end) and new streams go to a session handshaken with the identity in force. A session with no
// stream for idleMs is closed from this side, before the peer's idle timeout could race a new stream. A session whose
// peer refused a stream with ENHANCE_YOUR_CALM (a Node app past its session memory, held by answers a slow reader
// has not drained) takes no new stream either: it was refusing every stream, everyone's, and never recovered. A
// session spent (maxStreamsPerSession streams opened, near the end of its stream ids) takes no new stream and closes
// once its open ones have ended: no GOAWAY before, which would refuse its streams whose HEADERS are not out yet.
// A peer that allows no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0) gets none queued: a new session waits up to its
// SETTINGS deadline for it to allow one, and a full pool of such sessions fails the stream, as if it were down.
// Sessions to a peer proxy keep the keepalive of `keepalive` (h2-keepalive.ts), run by sweep(): one whose PING goes
// unanswered is cut, its streams reset, and the next stream gets a new session.
import { X509Certificate } from 'node:crypto';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TesseraError } from '../../../common/errors.js';
import { Http2HandlePins } from '../../../shared-io/http2-handle-pins.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { KeepaliveSettings } from '../upstream/keepalive-clock.js';
import { H2Keepalive } from './h2-keepalive.js';

/**
 * Opens the transport. `peerExpired`, when given, says whether the peer's certificate has expired by now: an mTLS
 * opener knows it on a resumed connection too, where Node shows no peer certificate to read it from.
 */
export type SocketOpener = (done: (err: Error | null, socket?: Socket, peerExpired?: () => boolean) => void) => void;

export interface H2UpstreamOptions {
  /** e.g. "https://127.0.0.1:15006" or "http://127.0.0.1:8080"; used for :authority and :scheme. */
  readonly authority: string;
  /** Opens the transport (already TLS-handshaken for mTLS); absent = plain TCP by http2.connect itself. */
  readonly open?: SocketOpener;
  /** Streams per session at most, below the peer's own cap (default STREAMS_PER_SESSION). */
  readonly maxConcurrentStreams?: number;
  /** Streams a session opens in all before it is retired (default MAX_STREAMS_PER_SESSION; tests use a few). */
  readonly maxStreamsPerSession?: number;
  /**
   * Sessions (connections) open at once at most, below MAX_SESSIONS: limits.upstreamPoolSize, the bound on what this
   * proxy holds toward one upstream. A session being connected counts (one at a time, its waiters queued on it).
   */
  readonly maxSessions?: number;
  /** The identity generation in force (mTLS upstreams); a session opened under another takes no new stream. */
  readonly generation?: () => number;
  /** Close a session that carried no stream for this long (0 or absent: never). */
  readonly idleMs?: number;
  /** The clock a peer certificate's expiry is judged by. */
  readonly nowMs: () => number;
  /** The idle timers run here (the listener's). */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /**
   * To a peer proxy: PING a quiet session, cut one whose PING goes unanswered (transport.keepalive*), checked by
   * sweep(); `onKeepaliveCut` counts each cut. Not to an app: a gRPC server takes unasked PINGs as abuse (GOAWAY).
   */
  readonly keepalive?: KeepaliveSettings;
  readonly onKeepaliveCut?: () => void;
  /** A plain session's TCP connection is made (an mTLS opener counts its own once the peer accepted it). */
  readonly onConnected?: () => void;
  /**
   * A new session whose peer has not sent SETTINGS allowing a stream within this (limits.headersTimeout) is given up,
   * its waiting streams failed (502): an app that accepts and never speaks HTTP/2, or allows no stream, held each
   * request until limits.requestTimeout (audit 61b). Default SETTINGS_TIMEOUT_MS.
   */
  readonly settingsTimeoutMs?: number;
}

/** limits.headersTimeout's default: as long as a client has for its first request's headers. */
export const SETTINGS_TIMEOUT_MS = 10_000;

interface SessionState {
  /** Streams open on it now. */
  streams: number;
  /** Streams opened on it in all, each with a stream id of its own (spent at maxStreamsPerSession). */
  opened: number;
  /** Its stream ids (nearly) all used: it takes no new stream and closes once its open ones have ended. */
  spent?: boolean;
  readonly generation: number;
  /** The peer certificate has expired (never for plaintext). */
  readonly peerExpired: () => boolean;
  /** Armed while no stream is open (idleMs). */
  idleTimer?: unknown;
}

/** When the certificate a TLS socket's peer presented expires; Infinity for plaintext or none. */
function peerNotAfterMs(socket: Socket | undefined): number {
  // The leaf alone, not getPeerX509Certificate(): Node's X509 reader leaks the chain after the leaf (sent-chain.ts).
  const raw = (socket as TLSSocket | undefined)?.getPeerCertificate?.()?.raw;
  return raw ? new X509Certificate(raw).validToDate.getTime() : Number.POSITIVE_INFINITY;
}

type Waiter = (err: Error | null, session?: http2.ClientHttp2Session) => void;

/**
 * Sessions per upstream at most (fewer when limits.upstreamPoolSize is lower); past it, streams queue in the least
 * busy session (nghttp2 holds them).
 */
const MAX_SESSIONS = 32;
/**
 * Streams per session at most when the peer allows more (a Node app's server allows 2^32-1): its limits are per
 * session, so one caller's unread streams fill one session, not the only one. Node's server also ends a session,
 * every stream on it, once it has refused 100 streams in a row (over its memory, ENHANCE_YOUR_CALM); a session
 * that never carries more than 100 cannot get there.
 */
export const STREAMS_PER_SESSION = 100;
/**
 * Streams a session opens before it is retired. A client's stream ids are odd and 31-bit, 2^30 of them; past the
 * last one Node fails each new stream (ERR_HTTP2_OUT_OF_STREAMS) and leaves the session open with none, the least
 * busy, picked first: every later stream to the upstream failed (~30 h at 10,000/s on a session never idle). Retired
 * 1,024 early (one more session per billion streams): a few streams opened without track() still find an id.
 */
export const MAX_STREAMS_PER_SESSION = 2 ** 30 - 1024;
/**
 * Why a stream found no session: the upstream's SETTINGS_MAX_CONCURRENT_STREAMS was 0 on a new session until its
 * SETTINGS deadline, or is 0 on every session of a full pool (502, or another endpoint).
 */
const NO_STREAMS_ALLOWED = 'upstream allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)';

export class H2Upstream {
  readonly #o: H2UpstreamOptions;
  /** Open sessions that may take new streams, and what each carries now. */
  readonly #sessions = new Map<http2.ClientHttp2Session, SessionState>();
  /** Every session not closed yet, retired ones included (their streams run on), with its keepalive. */
  readonly #alive = new Map<http2.ClientHttp2Session, H2Keepalive>();
  readonly #pins: Http2HandlePins;
  #waiters: { readonly cb: Waiter; readonly fresh: boolean }[] | undefined;
  #closed = false;

  constructor(opts: H2UpstreamOptions) {
    this.#o = opts;
    this.#pins = new Http2HandlePins(opts.timers);
  }

  /**
   * A session with room for one more stream: an open one, or a new one once it is connected. `fresh`: a new one
   * while fewer than maxSessions are open, for a stream the peer refused as over its limits (ENHANCE_YOUR_CALM):
   * an open session that looks free may be just as full on the peer's side (a Node app counts the unsent answers of
   * streams another caller left unread against each session's memory), a new one is not.
   */
  session(cb: Waiter, fresh = false): void {
    // Closed (its endpoint removed, the listener stopping): the pool's own error, so a retry says pool_closed.
    if (this.#closed) {
      cb(new TesseraError('TESSERA_ERR_UPSTREAM_POOL_CLOSED'));
      return;
    }
    const s = fresh && this.#sessions.size < this.#maxSessions ? undefined : this.#pick();
    if (s) {
      cb(null, s);
      return;
    }
    // As many sessions as may be, and none whose peer allows a stream now: a stream queued there waited for ever.
    if (this.#sessions.size >= this.#maxSessions) {
      cb(new Error(NO_STREAMS_ALLOWED));
      return;
    }
    if (this.#waiters) {
      this.#waiters.push({ cb, fresh });
      return;
    }
    this.#waiters = [{ cb, fresh }];
    const finish = (err: Error | null, session?: http2.ClientHttp2Session) => {
      const waiters = this.#waiters ?? [];
      this.#waiters = undefined;
      // Each picks again (a caller opens its stream in the callback): the new session takes streams up to its cap
      // and the rest of a burst that came while it connected go to the next one. All of them here, nghttp2 held
      // those past the peer's cap until a slot freed, for ever behind a caller that never reads (a 504 to others).
      // A caller that asked for a fresh session gets this one.
      for (const w of waiters) {
        if (err || !session) w.cb(err, session);
        // Unless it was retired under the burst (its last stream ids given): then another fresh one.
        else if (w.fresh && this.#sessions.has(session)) w.cb(null, session);
        else this.session(w.cb, w.fresh);
      }
    };
    const generation = this.#generation();
    const connect = (socket?: Socket, peerExpired?: () => boolean) => {
      const notAfterMs = peerExpired ? 0 : peerNotAfterMs(socket);
      const state: SessionState = { streams: 0, opened: 0, generation, peerExpired: peerExpired ?? (() => this.#o.nowMs() >= notAfterMs) };
      const session = http2.connect(this.#o.authority, {
        ...(socket ? { createConnection: () => socket } : {}),
        settings: { enablePush: false },
        maxSessionMemory: 64,
      });
      const forget = () => {
        this.#sessions.delete(session);
      };
      session.on('goaway', forget);
      session.on('close', forget);
      const keepalive = this.#o.keepalive;
      if (keepalive) {
        // From the start: a peer that froze before its SETTINGS fails the streams waiting for this session too.
        this.#alive.set(session, new H2Keepalive(session, keepalive, this.#o.nowMs, () => this.#keepaliveCut(session)));
        session.once('close', () => this.#alive.delete(session));
      }
      // Handed out only once the peer's SETTINGS are in: until then Node assumes a stream cap of 100 and the
      // streams past the real cap would queue here instead of opening another session.
      let pending = true;
      let connected = false;
      let settings = false;
      const ready = () => {
        if (!pending || !connected || !settings || session.closed || session.destroyed) return;
        pending = false;
        if (this.#closed) {
          // Closed while this one connected: never handed out or kept (close() retired only the open ones).
          session.close();
          finish(new TesseraError('TESSERA_ERR_UPSTREAM_POOL_CLOSED'));
          return;
        }
        this.#sessions.set(session, state);
        this.#armIdle(session, state);
        finish(null, session);
      };
      const failed = (e: Error) => {
        forget();
        if (!pending) return;
        pending = false;
        finish(e);
      };
      session.on('error', failed);
      session.once('close', () => failed(new Error('upstream session closed before its SETTINGS')));
      // Its SETTINGS must come, and allow a stream, within settingsTimeoutMs. A peer may allow none for a short while
      // (RFC 9113 §5.1.2): the waiters wait for it to allow one, up to then, on this session alone; before, each
      // opened another (up to the pool) and their streams were queued in nghttp2 until limits.requestTimeout.
      let allowedNone = false;
      const silent = this.#o.timers.setTimeout(() => {
        if (settings || session.destroyed) return;
        failed(new Error(allowedNone ? NO_STREAMS_ALLOWED : 'upstream sent no SETTINGS in time'));
        session.destroy();
      }, this.#o.settingsTimeoutMs ?? SETTINGS_TIMEOUT_MS);
      session.once('close', () => this.#o.timers.clearTimeout(silent));
      const onSettings = () => {
        allowedNone = session.remoteSettings.maxConcurrentStreams === 0;
        if (allowedNone) return;
        session.off('remoteSettings', onSettings);
        this.#o.timers.clearTimeout(silent);
        settings = true;
        ready();
      };
      session.on('remoteSettings', onSettings);
      session.once('connect', () => {
        // Its native handle is set up by now (a plain one connects first): held until its socket has closed.
        this.#pins.pin(session);
        connected = true;
        this.#o.onConnected?.();
        ready();
      });
      session.unref?.();
    };
    if (!this.#o.open) {
      connect();
      return;
    }
    this.#o.open((err, socket, peerExpired) => (err || !socket ? finish(err ?? new Error('connect failed')) : connect(socket, peerExpired)));
  }

  /** Counts `stream` against `session` until it closes, so that the next request goes where there is room. */
  track(session: http2.ClientHttp2Session, stream: http2.ClientHttp2Stream): void {
    this.#alive.get(session)?.track(stream);
    const state = this.#sessions.get(session);
    if (!state) return;
    state.streams++;
    this.#o.timers.clearTimeout(state.idleTimer);
    stream.once('close', () => {
      if (--state.streams > 0) return;
      if (state.spent) this.#closeNextTurn(session);
      else this.#armIdle(session, state);
    });
    // Out of ids all the same (streams opened without track()): Node failed only this stream, in request() (its
    // 'error' comes a tick later, after streams asked for meanwhile), and left the session open and empty, the one
    // picked first; the next stream goes to another.
    const outOfIds = (stream.errored as NodeJS.ErrnoException | null)?.code === 'ERR_HTTP2_OUT_OF_STREAMS';
    if (outOfIds || ++state.opened >= (this.#o.maxStreamsPerSession ?? MAX_STREAMS_PER_SESSION)) this.#spend(session, state);
  }

  /**
   * The peer refused a stream on `session` as over its limits (ENHANCE_YOUR_CALM): Node's server does so for every
   * new stream while the session's memory is past maxSessionMemory, the answers its unread streams hold counted.
   * Like a retired session, it takes no new stream and closes once its open streams end; the next stream gets a
   * fresh session. Closed on the next turn, not from inside the stream's callbacks (h2-forward.ts).
   */
  refused(session: http2.ClientHttp2Session): void {
    if (!this.#sessions.has(session)) return;
    this.#forget(session);
    this.#closeNextTurn(session);
  }

  /**
   * The listener's sweep: each session's keepalive (a PING when quiet, a dead peer's session cut). Returns whether
   * a session is left that needs the next sweep.
   */
  sweep(): boolean {
    for (const k of [...this.#alive.values()]) k.tick();
    return this.#alive.size > 0;
  }

  /** Open sessions (for tests and diagnostics). */
  get sessions(): number {
    return this.#sessions.size;
  }

  close(): void {
    this.#closed = true;
    for (const s of [...this.#sessions.keys()]) this.#retire(s);
  }

  /**
   * The first open session below the stream cap (the peer's, at most `cap`); when none and no more may open, the least
   * busy one whose peer allows streams at all.
   * Sessions of an older identity generation, or whose peer certificate has expired, are retired on the way.
   */
  #pick(): http2.ClientHttp2Session | undefined {
    const generation = this.#generation();
    const cap = this.#o.maxConcurrentStreams ?? STREAMS_PER_SESSION;
    let least: http2.ClientHttp2Session | undefined;
    let leastStreams = 0;
    for (const [s, state] of this.#sessions) {
      if (s.closed || s.destroyed) continue;
      if (state.generation !== generation || state.peerExpired()) {
        this.#retire(s);
        continue;
      }
      const peerCap = s.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      if (state.streams < Math.min(peerCap, cap)) return s;
      // Not one whose peer now allows no stream (a later SETTINGS of 0): nothing queued there would start.
      if (peerCap > 0 && (!least || state.streams < leastStreams)) {
        least = s;
        leastStreams = state.streams;
      }
    }
    return this.#sessions.size >= this.#maxSessions ? least : undefined;
  }

  get #maxSessions(): number {
    return Math.max(1, Math.min(MAX_SESSIONS, this.#o.maxSessions ?? MAX_SESSIONS));
  }

  #generation(): number {
    return this.#o.generation?.() ?? 0;
  }

  /** No new streams on `session`; GOAWAY, and it closes by itself once its open streams have ended. */
  #retire(session: http2.ClientHttp2Session): void {
    this.#forget(session);
    session.close();
  }

  /**
   * No new stream on `session`, and no GOAWAY yet: streams asked for in this turn have their HEADERS still queued,
   * and nghttp2 refuses those once it has sent a GOAWAY. Its last stream to end closes it.
   */
  #spend(session: http2.ClientHttp2Session, state: SessionState): void {
    state.spent = true;
    this.#forget(session);
  }

  /** Closed on the next turn, not from inside a stream's callbacks (h2-forward.ts). */
  #closeNextTurn(session: http2.ClientHttp2Session): void {
    setImmediate(() => {
      if (!session.closed && !session.destroyed) session.close();
    }).unref();
  }

  /** Takes `session` out of use (no new stream, no idle timer); closing it is the caller's. */
  #forget(session: http2.ClientHttp2Session): void {
    this.#o.timers.clearTimeout(this.#sessions.get(session)?.idleTimer);
    this.#sessions.delete(session);
  }

  /** `session`'s peer left its PING unanswered: cut (h2-keepalive.ts), it takes no stream again. */
  #keepaliveCut(session: http2.ClientHttp2Session): void {
    this.#forget(session);
    this.#alive.delete(session);
    this.#o.onKeepaliveCut?.();
  }

  /** Closes `session` when it still has no stream idleMs from now (a timer per idle period, not per stream). */
  #armIdle(session: http2.ClientHttp2Session, state: SessionState): void {
    const idleMs = this.#o.idleMs ?? 0;
    if (idleMs <= 0 || this.#sessions.get(session) !== state) return;
    this.#o.timers.clearTimeout(state.idleTimer);
    state.idleTimer = this.#o.timers.setTimeout(() => {
      if (state.streams === 0 && this.#sessions.get(session) === state) this.#retire(session);
    }, idleMs);
  }
}
