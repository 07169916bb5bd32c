// Server sockets refuse TLS 1.2 renegotiation, as nginx and Envoy do: the proxy's inbound and edge listeners and
// the control plane's gRPC port. Node lets a client renegotiate (a few times per 10 minutes) where OpenSSL 3 alone
// would not: a full handshake's CPU for a few bytes from the client, and a new certificate under a connection whose
// peer was already decided. Refused, the attempt closes the connection; callers count it with reason `protocol`
// (TLS 1.3 has no renegotiation).
import type { TLSSocket } from 'node:tls';

export function refuseRenegotiation(socket: TLSSocket, refused: () => void): void {
  socket.disableRenegotiation();
  // Node only emits the error; the connection is closed here, whatever the owner's 'error' handler does. `this` is
  // the TLS socket itself even when `socket` is an HTTP/2 session's guarded view (which forbids destroy()).
  socket.once('error', function (this: TLSSocket, err: Error & { code?: string }) {
    if (err.code !== 'ERR_TLS_RENEGOTIATION_DISABLED') return;
    refused();
    this.destroy();
  });
}
