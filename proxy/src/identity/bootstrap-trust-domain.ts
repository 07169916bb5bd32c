// The trust domain a control-plane identity works in, and its bootstrap bundle checked against it: the bundle's CA
// certificates name their trust domain (URI SAN spiffe://<td>), so a configured `identity.controlPlane.trustDomain`
// that none of them names is a config mistake, refused at start. Before, it was retried for ever as "unavailable",
// and the bundle's root, labelled with the configured domain, read as an authority of the wrong one.
import { TesseraError } from '../../../common/errors.js';
import { claimedTrustDomains } from '../../../common/spiffe/named-trust-domains.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { certificatesOf } from '../../../shared-io/read-named-file.js';

/**
 * `configured` when given (refused if the bundle names trust domains and not this one; a bundle that names none, an
 * external CA's, is taken as it is), else the first trust domain the bundle's certificates name.
 */
export function bootstrapTrustDomain(pem: string, file: string, configured: string | undefined, configuredAt?: { readonly file: string; readonly line: number }): TrustDomain {
  // Parsed as a named file: a malformed block is a coded error naming it, not a bare parser message.
  const named = new Set<string>();
  for (const cert of certificatesOf({ path: file, what: 'identity.controlPlane.bundleFile' }, Buffer.from(pem))) {
    const claimed = claimedTrustDomains(cert);
    const td = claimed.length === 1 ? TrustDomain.tryParse(claimed[0]!) : null;
    if (td) named.add(td.toString());
  }
  if (configured !== undefined) {
    const td = TrustDomain.parse(configured);
    if (named.size > 0 && !named.has(td.toString())) {
      const names = [...named].map((n) => `"${n}"`).join(', ');
      const key = 'identity.controlPlane.trustDomain';
      // Named at the key's place in the config, as a fault found while parsing is.
      const at = configuredAt ? `${configuredAt.file}:${configuredAt.line}: ` : '';
      throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${at}${key}: "${td.toString()}", but the certificates of identity.controlPlane.bundleFile (${file}) are of ${names}: set the trust domain the control plane serves, or the bundle of "${td.toString()}"`, configuredAt ? { file: configuredAt.file, line: configuredAt.line, key } : { file, key });
    }
    return td;
  }
  const first = named.values().next();
  if (first.done) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}: no CA certificate names its trust domain (URI SAN spiffe://<td>)`, { file });
  return TrustDomain.parse(first.value);
}
