// Server sockets refuse TLS 1.2 renegotiation, as nginx and Envoy do. Node lets a client renegotiate (a few times
// per 10 minutes) where OpenSSL 3 alone would not: a full handshake's CPU for a few bytes from the client, and a new
// certificate under a connection whose peer was already decided. Refused, the attempt closes the connection; it
// is counted as a failed handshake with reason `protocol` (TLS 1.3 has no renegotiation).
import type { TLSSocket } from 'node:tls';

export function refuseRenegotiation(socket: TLSSocket, refused: () => void): void {
  socket.disableRenegotiation();
  socket.once('error', (err: Error & { code?: string }) => {
    if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') refused();
  });
}
