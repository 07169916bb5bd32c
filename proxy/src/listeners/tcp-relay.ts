// Bytes both ways between two sockets with backpressure and half-close: when one side finishes sending, the
// other side's write half is ended and the reverse direction keeps flowing until it finishes too. A side that ends
// with a reset (an error) resets the other, never a clean close: across a mesh hop the caller's proxy must see the
// app's reset to charge its endpoint (`upstream_reset`), where a clean FIN would read as a tunnel that worked.
import type { Socket } from 'node:net';

export interface RelayResult {
  /** Bytes from `a` to `b`, and back. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly error?: string;
}

/**
 * The status that labels a finished tunnel (tessera_requests_total{code} for TCP, the connection's outcome; not logged):
 * 200 closed by either side, 408 closed by the proxy after limits.idleTimeout (streamIdleTimeout for CONNECT) with no
 * byte either way (as an idle HTTP connection, `idle_timeout`), 499 the client reset it (nginx's client closed
 * request), 502 the upstream reset it. Only the last is a failure: an idle or abandoned tunnel worked.
 */
export function tunnelStatus(error: string | undefined): number {
  if (error === undefined) return 200;
  if (error === 'idle_timeout') return 408;
  return error === 'downstream_reset' ? 499 : 502;
}

export function relay(a: Socket, b: Socket, idleTimeoutMs: number, done: (r: RelayResult) => void): void {
  let finished = false;
  let error: string | undefined;
  let closed = 0;
  const finish = () => {
    if (finished) return;
    finished = true;
    done({ bytesIn: b.bytesWritten ?? 0, bytesOut: a.bytesWritten ?? 0, ...(error ? { error } : {}) });
  };
  const onClose = () => {
    if (++closed === 2) finish();
  };
  const fail = (code: string) => () => {
    error ??= code;
    // The idle cut is the proxy's own close; a reset (either side's error) goes on to the other side as a reset.
    if (code === 'idle_timeout') {
      a.destroy();
      b.destroy();
    } else resetSocket(code === 'upstream_reset' ? a : b);
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', fail('downstream_reset'));
  b.on('error', fail('upstream_reset'));
  a.setTimeout(idleTimeoutMs, fail('idle_timeout'));
  // A close after an error was handled by fail (error listeners run before 'close'); a clean close stays clean.
  a.once('close', (hadError: boolean) => {
    if (hadError) resetSocket(b);
    else b.destroy();
    onClose();
  });
  b.once('close', (hadError: boolean) => {
    if (hadError) resetSocket(a);
    else a.destroy();
    onClose();
  });
}

/**
 * Closes an upstream connection that will carry nothing (its client left while it was being connected) with an
 * orderly end, not destroy(): the last flight of a TLS 1.3 handshake (the client's Finished) may still be queued,
 * and without it the upstream counted a handshake its peer abandoned, after its handshake timeout (audit 35a F1).
 */
export function closeUnused(up: Socket): void {
  up.on('error', () => up.destroy());
  up.setTimeout(UNUSED_LINGER_MS, () => up.destroy());
  up.end();
}

/** How long an unused upstream connection may wait for its peer's end before it is destroyed. */
const UNUSED_LINGER_MS = 5_000;

/**
 * Internals of a TLS socket (node:_tls_wrap) reaching its TCP connection: on a server, the net.Socket it wraps
 * (`_parentWrap`); on a client that dialled its own connection, only the native TCP handle (`_parent`).
 */
interface TlsInternals {
  readonly _handle?: { readonly _parentWrap?: unknown; readonly _parent?: TcpHandle } | null;
}

/** The native TCP handle's two ways to close: uv_close, and uv_tcp_close_reset (SO_LINGER 0, so an RST). */
interface TcpHandle {
  close?: (cb?: () => void) => void;
  reset?: (cb?: () => void) => number;
}

/**
 * Closes `s` with a TCP reset (RST), so its peer sees a reset, not an orderly end: resetAndDestroy() on a TCP socket;
 * on a TLS socket that wraps a net.Socket (an accepted connection), that socket's. A TLS socket that dialled its own
 * TCP connection closes its native handle when destroyed; that one close is made a reset (same callback, so the
 * socket's 'close' still comes), which is how a caller's reset reaches the app behind the next proxy.
 */
export function resetSocket(s: Socket): void {
  if (s.destroyed) return;
  const handle = (s as Socket & TlsInternals)._handle;
  const inner = handle?._parentWrap;
  if (!inner && typeof handle?._parent?.reset === 'function') {
    const tcp = handle._parent;
    const reset = tcp.reset!;
    tcp.close = (cb) => void reset.call(tcp, cb);
    s.destroy();
    return;
  }
  const tcp = inner instanceof Object && 'resetAndDestroy' in inner ? (inner as Socket) : s;
  try {
    tcp.resetAndDestroy();
    if (tcp !== s) s.destroy();
  } catch {
    s.destroy(); // not a TCP handle (a pipe): destroyed
  }
}
