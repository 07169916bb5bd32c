// One long-lived, multiplexed HTTP/2 client session to an upstream (a peer proxy over mTLS, or the local app
// over h2c), opened lazily, shared by every stream, and replaced when it closes or receives GOAWAY.
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

export class H2Upstream {
  readonly #o: H2UpstreamOptions;
  #session: http2.ClientHttp2Session | undefined;
  #waiters: Waiter[] | undefined;
  #closed = false;

  constructor(opts: H2UpstreamOptions) {
    this.#o = opts;
  }

  /** A usable session: the current one, or a new one once it is connected. */
  session(cb: Waiter): void {
    const s = this.#session;
    if (s && !s.closed && !s.destroyed) {
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
        if (this.#session === session) this.#session = undefined;
      };
      session.on('goaway', forget);
      session.on('close', forget);
      session.on('error', (e) => {
        forget();
        if (!session.connecting) return;
        finish(e);
      });
      session.once('connect', () => {
        this.#session = session;
        finish(null, session);
      });
      session.unref?.();
    };
    if (!this.#o.open) {
      connect();
      return;
    }
    this.#o.open((err, socket) => (err || !socket ? finish(err ?? new Error('connect failed')) : connect(socket)));
  }

  close(): void {
    this.#closed = true;
    this.#session?.close();
  }
}
