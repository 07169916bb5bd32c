// The control plane's own X.509-SVID (spiffe://<td>/tessera/control-plane), served on the gRPC port: a fresh
// key in memory (never written), signed by the chain self-signer.ts picks (the oldest retired authority still in the
// bundle while it can sign, else the active one), renewed at half-life or when that pick changes, and recorded in
// the inventory like every other SVID (kind `self`).
import { X509Certificate } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { generateKeyPair, privateKeyPem } from '../../../common/pki/keys.js';
import { encodePem } from '../../../common/pki/pem.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { CaSnapshot, SigningAuthority } from '../ca/ca-manager.js';
import type { Issuer } from './issuer.js';
import { selfSigner } from './self-signer.js';
import { controlPlaneIdString } from './svid-policy.js';

export interface SelfSvid {
  readonly spiffeId: string;
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly serial: string;
  readonly authorityId: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export class SelfSvidSource {
  readonly #issuer: Issuer;
  readonly #id: SpiffeId;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  #current: SelfSvid | undefined;

  constructor(issuer: Issuer, td: TrustDomain, ttlMs: number, clock: Clock) {
    this.#issuer = issuer;
    this.#id = SpiffeId.parse(controlPlaneIdString(td));
    this.#ttlMs = ttlMs;
    this.#clock = clock;
  }

  get current(): SelfSvid | undefined {
    return this.#current;
  }

  /** The chain an SVID minted now is to be signed by. */
  signerFor(ca: CaSnapshot): SigningAuthority {
    return selfSigner(ca, this.#clock.nowMs(), this.#ttlMs);
  }

  /** Whether the SVID should be reissued now (none yet, past half-life, or signed by another authority than `authorityId`). */
  due(authorityId: string): boolean {
    const c = this.#current;
    if (!c) return true;
    return c.authorityId !== authorityId || this.#clock.nowMs() >= c.notBeforeMs + (c.notAfterMs - c.notBeforeMs) / 2;
  }

  /** Makes it current: only once it is served, so that what is reported (/certs, readiness) is what is served. */
  adopt(svid: SelfSvid): void {
    this.#current = svid;
  }

  /** A new SVID signed by `signer`, not yet current (adopt). */
  async mint(signer: SigningAuthority): Promise<SelfSvid> {
    const key = generateKeyPair('ec-p256');
    const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
    const r = await this.#issuer.issueSelf({ publicKey: key.publicKey, spkiDer, algorithm: 'ec-p256', sans: [], requestsCa: false }, this.#id, this.#ttlMs, signer);
    const leaf = r.chainDer[0]!;
    return {
      spiffeId: r.spiffeId,
      certChainPem: r.chainDer.map((d) => encodePem('CERTIFICATE', d)).join(''),
      keyPem: privateKeyPem(key),
      serial: r.serial,
      authorityId: signer.authorityId,
      notBeforeMs: new X509Certificate(leaf).validFromDate.getTime(),
      notAfterMs: r.notAfterMs,
    };
  }
}
