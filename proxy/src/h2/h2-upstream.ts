// Long-lived, multiplexed HTTP/2 client sessions to an upstream (a peer proxy over mTLS, or the local app over
// h2c), opened lazily and shared by every stream; another is opened when each has as many streams as the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS allows (so long-lived streams past the cap do not wait), and a session is
// forgotten when it closes or receives GOAWAY.
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';

export type SocketOpener = (done: (err: Error | null, socket?: Socket) => void) => void;

export interface H2UpstreamOptions {
  /** e.g. "https://127.0.0.1:15006" or "http://127.0.0.1:8080"; used for :authority and :scheme. */
  readonly authority: string;
  /** Opens the transport (already TLS-handshaken for mTLS); absent = plain TCP by http2.connect itself. */
  readonly open?: SocketOpener;
  readonly maxConcurrentStreams?: number;
}

type Waiter = (err: Error | null, session?: http2.ClientHttp2Session) => void;

/** Sessions per upstream at most; past it, streams queue in the least busy session (nghttp2 holds them). */
const MAX_SESSIONS = 32;

export class H2Upstream {
  readonly #o: H2UpstreamOptions;
  /** Open sessions and the streams each carries now. */
  readonly #sessions = new Map<http2.ClientHttp2Session, number>();
  #waiters: Waiter[] | undefined;
  #closed = false;

  constructor(opts: H2UpstreamOptions) {
    this.#o = opts;
  }

  /** A session with room for one more stream: an open one, or a new one once it is connected. */
  session(cb: Waiter): void {
    const s = this.#pick();
    if (s) {
      cb(null, s);
      return;
    }
    if (this.#closed) {
      cb(new Error('upstream closed'));
      return;
    }
    if (this.#waiters) {
      this.#waiters.push(cb);
      return;
    }
    this.#waiters = [cb];
    const finish = (err: Error | null, session?: http2.ClientHttp2Session) => {
      const waiters = this.#waiters ?? [];
      this.#waiters = undefined;
      for (const w of waiters) w(err, session);
    };
    const connect = (socket?: Socket) => {
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
      // Handed out only once the peer's SETTINGS are in: until then Node assumes a stream cap of 100 and the
      // streams past the real cap would queue here instead of opening another session.
      let pending = true;
      let connected = false;
      let settings = false;
      const ready = () => {
        if (!pending || !connected || !settings || session.closed || session.destroyed) return;
        pending = false;
        this.#sessions.set(session, 0);
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
      session.once('remoteSettings', () => {
        settings = true;
        ready();
      });
      session.once('connect', () => {
        connected = true;
        ready();
      });
      session.unref?.();
    };
    if (!this.#o.open) {
      connect();
      return;
    }
    this.#o.open((err, socket) => (err || !socket ? finish(err ?? new Error('connect failed')) : connect(socket)));
  }

  /** Counts `stream` against `session` until it closes, so that the next request goes where there is room. */
  track(session: http2.ClientHttp2Session, stream: http2.ClientHttp2Stream): void {
    if (!this.#sessions.has(session)) return;
    this.#sessions.set(session, (this.#sessions.get(session) ?? 0) + 1);
    stream.once('close', () => {
      const n = this.#sessions.get(session);
      if (n !== undefined) this.#sessions.set(session, n - 1);
    });
  }

  /** Open sessions (for tests and diagnostics). */
  get sessions(): number {
    return this.#sessions.size;
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#sessions.keys()) s.close();
    this.#sessions.clear();
  }

  /** The first open session below the peer's stream cap; when none and no more may open, the least busy one. */
  #pick(): http2.ClientHttp2Session | undefined {
    let least: http2.ClientHttp2Session | undefined;
    for (const [s, n] of this.#sessions) {
      if (s.closed || s.destroyed) continue;
      if (n < (s.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY)) return s;
      if (!least || n < this.#sessions.get(least)!) least = s;
    }
    return this.#sessions.size >= MAX_SESSIONS ? least : undefined;
  }
}
