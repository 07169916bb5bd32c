// Accepting a federated trust domain's SPIFFE bundle document (pure): it must parse strictly, hold at least one
// x509-svid CA authority, and none of its authorities may name another trust domain than the one configured for
// the endpoint — a bundle endpoint cannot make us trust keys for a domain it does not speak for.
import type { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { checkBundleKey, type JwtAuthority, parseSpiffeBundle } from '../../../common/spiffe/spiffe-bundle.js';
import { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { namedTrustDomains } from '../../../common/spiffe/named-trust-domains.js';

export interface FederatedBundle {
  readonly bundle: TrustBundle;
  readonly jwtAuthorities: readonly JwtAuthority[];
  readonly sequence: bigint | undefined;
  readonly refreshHintSeconds: number | undefined;
  /** Entries of the document skipped as the spec says (another key type, no x5c), each with why. */
  readonly ignored: readonly string[];
}

/** The trust domains an authority names in its SPIFFE URI SANs; unreadable extensions refuse the document. */
function authorityTrustDomains(cert: X509Certificate): string[] {
  try {
    return namedTrustDomains(cert);
  } catch {
    throw new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED', `x509-svid authority ${cert.subject}: unreadable extensions`);
  }
}

/**
 * The trust bundle of `td` made of these authorities, when they may anchor it: at least one, all CA
 * certificates, none naming another trust domain, not all expired. Throws a coded TesseraError.
 */
export function federatedTrustBundle(authorities: readonly X509Certificate[], td: TrustDomain, nowMs: number): TrustBundle {
  if (authorities.length === 0) throw new TesseraError('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES', `bundle for "${td.name}" holds no x509-svid key`);
  for (const cert of authorities) {
    // A bootstrap bundle in PEM did not come through the JWK import that checks this too.
    checkBundleKey(cert.publicKey, `x509-svid authority ${cert.subject}`);
    const other = authorityTrustDomains(cert).find((name) => name !== td.name);
    if (other !== undefined) {
      throw new TesseraError('TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN', `bundle for "${td.name}" holds an authority of "${other}" (${cert.subject})`, { trustDomain: td.name, found: other });
    }
  }
  // A bundle whose every authority has expired anchors nothing: refusing it keeps the last good one in force.
  if (authorities.every((c) => c.validToDate.getTime() <= nowMs)) {
    throw new TesseraError('TESSERA_ERR_FEDERATION_BUNDLE_EXPIRED', `every x509-svid authority of the bundle for "${td.name}" has expired`);
  }
  try {
    return new TrustBundle(td, authorities);
  } catch (e) {
    // An x509-svid key that is not a CA certificate cannot anchor anything.
    throw new TesseraError('TESSERA_ERR_FEDERATION_NO_X509_AUTHORITIES', `bundle for "${td.name}": ${(e as Error).message}`, {}, { cause: e });
  }
}

/** Validates a fetched document for `td` at `nowMs`; throws a coded TesseraError naming what is wrong. */
export function acceptFederatedBundle(text: string, td: TrustDomain, nowMs: number): FederatedBundle {
  const doc = parseSpiffeBundle(text); // TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED
  const bundle = federatedTrustBundle(doc.x509Authorities, td, nowMs);
  const jwtAuthorities = [...doc.jwtAuthorities].map(([keyId, publicKey]) => ({ keyId, publicKey }));
  return { bundle, jwtAuthorities, sequence: doc.sequence, refreshHintSeconds: doc.refreshHintSeconds, ignored: doc.ignored };
}
