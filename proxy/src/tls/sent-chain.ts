// The certificates a TLS peer sent, leaf first, every one in order, as node:crypto's X509Certificate links them
// through issuerCertificate (getPeerX509Certificate). getPeerCertificate(true) links issuers only (and appends a
// trusted root), so an unrelated extra certificate, which the SVID rules refuse (checkPath), would never reach them.
// Node moves the chain out of the TLS session at its first read (a second read gives the leaf alone): read it once
// per connection. One walk for the sidecars' PeerVerifier and the edge's client check.

/** Certificates a peer may send (an honest chain is two to four); a longer one is refused. */
export const SENT_MAX = 10;

/** A certificate as both of Node's peer readings link them (X509Certificate, DetailedPeerCertificate). */
export interface SentCertificate {
  readonly fingerprint256?: string;
  readonly issuerCertificate?: SentCertificate | undefined;
}

/**
 * The certificates linked from `leaf` ([] without one), or null past SENT_MAX. A self-issued certificate may link
 * to itself: the walk stops at the first repeat.
 */
export function sentCertificates<T extends SentCertificate>(leaf: T | undefined): T[] | null {
  const out: T[] = [];
  for (let c = leaf; c?.fingerprint256 !== undefined && !out.some((o) => o.fingerprint256 === c!.fingerprint256); c = c.issuerCertificate as T | undefined) {
    if (out.length === SENT_MAX) return null;
    out.push(c);
  }
  return out;
}
