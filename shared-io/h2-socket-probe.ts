// Makes an HTTP/2 session over TLS see that its peer went away. node:http2 (Node 24) stops reading a connection while
// one of its writes is in progress, to push back; when the peer then resets the connection (a slow reader that gave
// up, a killed process, a client gone right after its handshake), that write fails with ECONNRESET and the socket
// leaves the event loop, but over TLS the failure never reaches the session: no 'error', no 'close', its streams (and
// their upstream requests, pool slots and app connections) stay open until limits.streamIdleTimeout, and the socket
// of a session destroyed meanwhile for good (audits 60b F1, 60f F1; a bare node:http2 server does the same). Asking
// the socket to read again surfaces the reset, and the session and its socket close as on any other.
import type { Http2Session } from 'node:http2';

interface ReadableHandle {
  readStart(): number;
}

/**
 * Asks `session`'s socket to read: a no-op on a live connection (what arrives is the session's input anyway, and it
 * stops reading again at its next write), the reset on a dead one. A session destroyed while a write of it hangs
 * keeps its socket open too (node:http2 ends the socket only once that write completes): the same reset closes it.
 * Nothing happens where a later Node has no such handle, or once the session has let go of its socket.
 */
export function probeSessionSocket(session: Http2Session): void {
  let handle: Partial<ReadableHandle> | null | undefined;
  try {
    // session.socket is node:http2's guarded view of the socket: reading its handle is allowed, calling read() is
    // not; it throws once the session has let go of the socket (ERR_HTTP2_SOCKET_UNBOUND).
    handle = (session.socket as unknown as { readonly _handle?: Partial<ReadableHandle> | null } | undefined)?._handle;
  } catch {
    return;
  }
  if (typeof handle?.readStart === 'function') handle.readStart();
}
