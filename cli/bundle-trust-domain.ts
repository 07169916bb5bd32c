// The trust domain a bundle file is for, as `tessera svid fetch` and `tessera svid verify --jwt` read it when
// --trust-domain is not given: the one its authorities name in their SPIFFE URI SAN (Tessera's roots carry one).
import type { X509Certificate } from 'node:crypto';
import { TesseraError } from '../common/errors.js';
import { claimedTrustDomains } from '../common/spiffe/named-trust-domains.js';
import { TrustDomain } from '../common/spiffe/trust-domain.js';

export function trustDomainOf(bundle: readonly X509Certificate[], file: string): TrustDomain {
  const tds = new Set<string>();
  for (const ca of bundle) for (const td of claimedTrustDomains(ca)) tds.add(td);
  const only = tds.size === 1 ? TrustDomain.tryParse([...tds][0]!) : null;
  if (!only) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `cannot tell the trust domain from ${file} (found ${tds.size}); pass --trust-domain`);
  return only;
}
