// The trust domains a CA certificate names in its SPIFFE URI SANs (SPIFFE roots carry `spiffe://<td>`), read from
// the parsed extension. Never from node:crypto's `subjectAltName` text: it quotes nothing, so a DNS name or a URI of
// another scheme that contains "URI:spiffe://example.org" reads there as if the CA named example.org. A CA that
// names any domain serves only those it names: naming several, or one in another case, is no licence to serve the
// domain a leaf claims (which is what a CA naming none is given by `svid verify`).
import type { X509Certificate } from 'node:crypto';
import { readCertFields } from './x509-fields.js';

const SPIFFE_SCHEME = /^spiffe:\/\//i;

/** The distinct names of `cert`'s spiffe:// URI SANs (any scheme case), as written, in order. Throws DerError. */
export function namedTrustDomains(cert: X509Certificate): string[] {
  const names = readCertFields(cert.raw)
    .uriSans.filter((u) => SPIFFE_SCHEME.test(u))
    .map((u) => u.slice('spiffe://'.length).split('/')[0]!);
  return [...new Set(names)];
}

/**
 * What `cert` claims: [] when it has no SPIFFE URI SAN; else the names (which may not be valid trust domains).
 * Unreadable extensions claim [''], a name no trust domain has: such a CA serves none.
 */
export function claimedTrustDomains(cert: X509Certificate): readonly string[] {
  try {
    return namedTrustDomains(cert);
  } catch {
    return [''];
  }
}
