// The common names of a certificate's subject, as node:crypto prints a subject (one attribute a line,
// "CN=node-1\nO=Example"): read in one place for the TPM AK check and the name-constraint check.
import type { X509Certificate } from 'node:crypto';

/** Every CN of the subject, in order. */
export function commonNamesOf(cert: X509Certificate): string[] {
  return cert.subject
    .split('\n')
    .filter((l) => l.startsWith('CN='))
    .map((l) => l.slice(3));
}
