// Renewal and Config/Watch authentication: the caller's current X.509-SVID, presented over mTLS, must verify
// now against this control plane's bundle (its own trust domain only). Its SPIFFE ID is the attested identity.
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import type { AttestedIdentity } from './attested-identity.js';

export interface VerifiedPeer extends AttestedIdentity {
  readonly notAfterMs: number;
  readonly serial: string;
}

export class SvidAttestor {
  readonly #bundle: () => TrustBundle;
  readonly #clock: Clock;

  constructor(bundle: () => TrustBundle, clock: Clock) {
    this.#bundle = bundle;
    this.#clock = clock;
  }

  /** `chain` is the peer's DER chain, leaf first (empty when it sent no certificate). */
  attest(chain: readonly Uint8Array[]): VerifiedPeer {
    if (chain.length === 0) throw new TesseraError('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');
    const r = verifyX509Svid(chain, new TrustBundleSet([this.#bundle()]), { nowMs: this.#clock.nowMs() });
    if (!r.ok) throw new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID', undefined, { reason: r.reason, svidCode: r.code, detail: r.message });
    const serial = r.leaf.serialNumber.toLowerCase();
    return { spiffeId: r.id, attestor: 'x509svid', attestedAs: `x509svid:${serial}`, notAfterMs: r.notAfterMs, serial };
  }
}
