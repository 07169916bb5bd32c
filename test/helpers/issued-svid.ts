// The proxy's installed-SVID value (IssuedSvid) for an SVID minted by the test CA, as the control-plane SVID source
// would hold it after a SignSvid answer: for tests that call the control plane with a client certificate.
import { SpiffeId } from '../../common/spiffe/spiffe-id.js';
import { TrustBundle } from '../../common/spiffe/trust-bundle.js';
import type { IssuedSvid } from '../../proxy/src/identity/control-plane-svid-source.js';
import type { MintedSvid, TestCa } from './test-ca.js';

export function issuedSvid(svid: MintedSvid, ca: TestCa, id: string): IssuedSvid {
  return {
    id: SpiffeId.parse(id),
    chain: svid.chain,
    key: svid.key,
    bundle: TrustBundle.parse(ca.trustDomain, ca.bundlePem()),
    notBeforeMs: svid.leaf.validFromDate.getTime(),
    notAfterMs: svid.leaf.validToDate.getTime(),
    issuedAtMs: Date.now(),
    serial: svid.leaf.serialNumber,
  };
}
