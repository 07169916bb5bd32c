// Holds each HTTP/2 session's native handle until the session's socket has closed. Node's HTTP/2 binding frees a
// session's native half when the GC finds its JS handle unreachable, and node:http2 lets go of the handle as soon as
// the session is destroyed, while the TLS socket may still complete a write into that session: a GC in the
// JavaScript that completion calls freed the session under its own frame (SIGSEGV in nghttp2_session_want_read,
// Http2Session::OnStreamAfterWrite; the control plane under sidecar churn, with or without an inspector, audits 58c
// and 58g; a pure node:http2 probe crashes every time). Once the socket has closed, no write of it can complete, and
// the handle goes a timer turn later. Where a later node:http2 keeps no such handle, nothing is held.
import type { Http2Session } from 'node:http2';
import type { Timers } from './timers.js';

export class Http2HandlePins {
  readonly #pinned = new Set<object>();
  readonly #timers: Pick<Timers, 'setTimeout'>;

  constructor(timers: Pick<Timers, 'setTimeout'>) {
    this.#timers = timers;
  }

  /** Handles held now. */
  get size(): number {
    return this.#pinned.size;
  }

  pin(session: Http2Session): void {
    const key = Object.getOwnPropertySymbols(session).find((s) => s.description === 'kHandle');
    const handle: unknown = key === undefined ? undefined : (session as unknown as Record<symbol, unknown>)[key];
    const socket = session.socket;
    if (typeof handle !== 'object' || handle === null || socket === undefined || socket === null || socket.closed) return;
    this.#pinned.add(handle);
    socket.once('close', () => this.#timers.setTimeout(() => this.#pinned.delete(handle), 0));
  }
}
