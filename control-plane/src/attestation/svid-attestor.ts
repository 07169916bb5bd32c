// Renewal and Config/Watch authentication: the caller's current X.509-SVID, presented over mTLS, must verify
// now against this control plane's bundle (its own trust domain only). Its SPIFFE ID is the attested identity.
// The same chain verified again against the same bundle, inside its validity, reuses the verdict (svid-verdicts.ts):
// bans are checked by the caller on every call, not here.
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { verifyX509Svid } from '../../../common/spiffe/x509-svid.js';
import type { AttestedIdentity } from './attested-identity.js';
import { DEFAULT_MAX_SVID_VERDICTS, SvidVerdicts } from './svid-verdicts.js';

export interface VerifiedPeer extends AttestedIdentity {
  readonly notAfterMs: number;
  readonly serial: string;
}

export interface SvidAttestorOptions {
  /** Chain verdicts kept (default DEFAULT_MAX_SVID_VERDICTS). */
  readonly maxVerdicts?: number;
  /** The path check (default verifyX509Svid); tests count its calls. */
  readonly verify?: typeof verifyX509Svid;
}

export class SvidAttestor {
  readonly #bundle: () => TrustBundle;
  readonly #clock: Clock;
  readonly #verify: typeof verifyX509Svid;
  readonly #verdicts: SvidVerdicts<VerifiedPeer>;

  constructor(bundle: () => TrustBundle, clock: Clock, opts: SvidAttestorOptions = {}) {
    this.#bundle = bundle;
    this.#clock = clock;
    this.#verify = opts.verify ?? verifyX509Svid;
    this.#verdicts = new SvidVerdicts(opts.maxVerdicts ?? DEFAULT_MAX_SVID_VERDICTS);
  }

  /** `chain` is the peer's DER chain, leaf first (empty when it sent no certificate). */
  attest(chain: readonly Uint8Array[]): VerifiedPeer {
    if (chain.length === 0) throw new TesseraError('TESSERA_ERR_ATTESTATION_NO_EVIDENCE');
    const bundle = this.#bundle();
    const nowMs = this.#clock.nowMs();
    const key = SvidVerdicts.chainKey(chain);
    const known = this.#verdicts.get(key, bundle, nowMs);
    if (known) return known;
    const r = this.#verify(chain, new TrustBundleSet([bundle]), { nowMs });
    if (!r.ok) throw new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID', undefined, { reason: r.reason, svidCode: r.code, detail: r.message });
    const serial = r.leaf.serialNumber.toLowerCase();
    const peer: VerifiedPeer = Object.freeze({ spiffeId: r.id, attestor: 'x509svid', attestedAs: `x509svid:${serial}`, notAfterMs: r.notAfterMs, serial });
    this.#verdicts.set(key, bundle, { peer, notBeforeMs: r.notBeforeMs, notAfterMs: r.notAfterMs });
    return peer;
  }
}
