// Closing a connection with a TCP reset (RST) instead of an orderly end (FIN): how this proxy aborts what it cuts
// (the drain deadline, a ban, a total timeout) and passes on a reset it read, so that the peer behind either leg
// sees an abort and never takes a half-sent stream for a complete one. For TCP and TLS sockets, and for the streams
// of the multiplexed transport (whose abort is a stream reset, which the far proxy turns into an RST in turn).
import { Socket } from 'node:net';
import type { ByteSocket } from '../http1/byte-socket.js';

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

/** resetSocket() for a socket; a stream of a multiplexed session is destroyed, which resets it (RST_STREAM CANCEL). */
export function resetByteSocket(s: ByteSocket): void {
  if (s instanceof Socket) resetSocket(s);
  else s.destroy();
}
