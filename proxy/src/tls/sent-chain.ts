// The certificates a TLS peer sent, leaf first, as Node links them through issuerCertificate, read with
// getPeerCertificate(true). Never socket.getPeerX509Certificate(): Node 24 builds its issuer chain by duplicating
// each certificate after the leaf out of the TLS session and never frees the original, so every full handshake
// leaked what the peer sent (a self-signed leaf and 31 junk certificates, no credential needed: ~250 KB a handshake,
// audit 51b F1). getPeerCertificate(true) links issuers only (and may append a trusted root from the context's store),
// so an unrelated extra certificate is dropped by Node before the SVID rules see it, as on the control plane's port.
// One walk for the sidecars' PeerVerifier and the edge's client check.
import type { DetailedPeerCertificate } from 'node:tls';

/** Certificates a peer may send (an honest chain is two to four); a longer one is refused. */
export const SENT_MAX = 10;

/** A certificate as both of Node's peer readings link them (X509Certificate, DetailedPeerCertificate). */
export interface SentCertificate {
  readonly fingerprint256?: string;
  readonly issuerCertificate?: SentCertificate | undefined;
}

/** A socket whose peer's chain can be read without the leak above (a node:tls TLSSocket). */
export interface ChainSocket {
  getPeerCertificate(detailed: true): DetailedPeerCertificate;
}

/** The peer's leaf with its issuers linked, undefined when it sent none (Node answers an empty object then). */
export function peerChainHead(socket: ChainSocket): DetailedPeerCertificate | undefined {
  const leaf = socket.getPeerCertificate(true);
  return leaf?.raw && leaf.fingerprint256 ? leaf : undefined;
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
