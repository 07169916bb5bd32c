// The trust domains a CA certificate names in its SPIFFE URI SANs (SPIFFE roots carry `spiffe://<td>`), read from
// the parsed extension. Never from node:crypto's `subjectAltName` text: it quotes nothing, so a DNS name or a URI of
// another scheme that contains "URI:spiffe://example.org" reads there as if the CA named example.org.
import type { X509Certificate } from 'node:crypto';
import { readCertFields } from './x509-fields.js';

/** The distinct trust-domain names of `cert`'s spiffe:// URI SANs, in order. Throws DerError on malformed extensions. */
export function namedTrustDomains(cert: X509Certificate): string[] {
  const names = readCertFields(cert.raw)
    .uriSans.filter((u) => u.startsWith('spiffe://'))
    .map((u) => u.slice('spiffe://'.length).split('/')[0]!);
  return [...new Set(names)];
}

/** The one trust domain `cert` names, or undefined when it names none, several, or has unreadable extensions. */
export function soleNamedTrustDomain(cert: X509Certificate): string | undefined {
  try {
    const names = namedTrustDomains(cert);
    return names.length === 1 ? names[0] : undefined;
  } catch {
    return undefined;
  }
}
