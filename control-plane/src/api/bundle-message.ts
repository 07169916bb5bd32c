// One trust bundle as the wire's TrustBundle message: the X.509 authorities (DER roots) and the JWT-SVID keys
// (kid + DER SPKI). SignSvid answers and Config/Watch snapshots both use it, so neither can drop a part.
import type { TrustBundleMsg } from '../../../common/contract/identity-v1.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';

export function trustBundleMsg(bundle: TrustBundle, jwt: readonly JwtAuthority[]): TrustBundleMsg {
  return {
    trust_domain: bundle.trustDomain.name,
    x509_authorities: bundle.authorities.map((a) => a.raw),
    jwt_authorities: jwt.map((k) => ({ key_id: k.keyId, public_key: k.publicKey.export({ type: 'spki', format: 'der' }) })),
  };
}
