// The certificates an edge client sent, leaf first, as socket.getPeerX509Certificate() links them: every one it
// sent, in order. getPeerCertificate(true) links issuers only (and appends the clientCa root), so an unrelated extra
// certificate, which the SVID rules refuse (checkPath), never reached the verifier. Node moves the chain out of the
// TLS session at this first read (a second read gives the leaf alone): read it once per connection.
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** Certificates a client may send, as PeerVerifier allows a peer (an honest chain is two to four). */
export const SENT_MAX = 10;

/** The sent chain ([] without a certificate), or null past SENT_MAX. */
export function sentChain(socket: Pick<TLSSocket, 'getPeerX509Certificate'>): X509Certificate[] | null {
  const out: X509Certificate[] = [];
  // A self-issued certificate may link to itself: the walk stops at the first repeat.
  for (let c = socket.getPeerX509Certificate(); c && !out.some((o) => o.fingerprint256 === c!.fingerprint256); c = c.issuerCertificate) {
    if (out.length === SENT_MAX) return null;
    out.push(c);
  }
  return out;
}
