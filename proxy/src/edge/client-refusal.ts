// Why the edge refuses a client at its handshake, as one reason of the fixed set (telemetry/handshake-reason.ts):
// the reason the sidecar inbound gives the same certificate. The TLS server never rejects a chain itself
// (rejectUnauthorized: false, as the inbound's): Node would destroy the socket after the handshake and the only
// error left is "socket hang up", counted as `protocol` whatever the certificate was. The edge's own verifier
// (client-identity.ts, the SVID rules) decides first and names the fault; OpenSSL's verdict against clientCa
// still refuses what those rules let through (an extendedKeyUsage without clientAuth, a name constraint).
import type { TLSSocket } from 'node:tls';
import { type HandshakeReason, classifyTlsError } from '../telemetry/handshake-reason.js';
import type { EdgeClient, EdgeClientFailure } from './client-identity.js';

export interface ClientRefusal {
  readonly reason: HandshakeReason;
  /** For the log only, never sent to the client. */
  readonly detail: string;
}

export interface ClientChecks {
  verifyClient(socket: TLSSocket): EdgeClient | EdgeClientFailure | null;
  banned(client: EdgeClient): boolean;
}

/**
 * The refusal of a finished handshake, or null to serve the connection. `required`: the listener has a clientCa
 * and `clientCert: required`, so a client without a certificate is refused too. A certificate that was presented
 * and does not verify is refused in both modes, as Envoy does: served, its connection would hold session tickets,
 * and a resumed session carries only the leaf, so a chain refused for what else it held (an unrelated extra
 * certificate) would come back through resumption as the known leaf.
 */
export function clientRefusal(checks: ClientChecks, socket: TLSSocket, required: boolean): ClientRefusal | null {
  const verdict = checks.verifyClient(socket);
  if (verdict === null) return required ? { reason: 'no_client_cert', detail: 'no client certificate' } : null;
  if ('ok' in verdict) return { reason: verdict.reason, detail: verdict.message };
  if (!socket.authorized) {
    // authorizationError is an X.509 verify code (Node types it as an Error string).
    const code = String(socket.authorizationError ?? '');
    return { reason: classifyTlsError(code), detail: `client certificate refused against clientCa (${code})` };
  }
  if (checks.banned(verdict)) return { reason: 'revoked', detail: `${verdict.spiffeId?.toString() ?? verdict.subject} (serial ${verdict.serial}) is banned` };
  return null;
}

