// What the control plane serves gRPC with: its own SVID, issued by its own CA (from the chain self-signer.ts picks)
// and renewed at half-life or as soon as that pick changes, and the bundle client certificates are verified against.

import type { Clock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { ServerIdentity } from '../api/grpc-server.js';
import type { CaSnapshot } from '../ca/ca-manager.js';
import type { Issuer } from './issuer.js';
import { type SelfSvid, SelfSvidSource } from './self-svid.js';

export class ServedIdentity {
  readonly #self: SelfSvidSource;
  readonly #ca: () => CaSnapshot;
  /** Refreshes run one at a time: two due at once (a CA change and the tick) issue one SVID. */
  #refreshing: Promise<void> = Promise.resolve();

  private constructor(self: SelfSvidSource, ca: () => CaSnapshot) {
    this.#self = self;
    this.#ca = ca;
  }

  /** Issues the first SVID at once: the gRPC listener cannot start without one. */
  static async open(issuer: Issuer, td: TrustDomain, ttlMs: number, ca: () => CaSnapshot, clock: Clock): Promise<ServedIdentity> {
    const self = new SelfSvidSource(issuer, td, ttlMs, clock);
    self.adopt(await self.mint(self.signerFor(ca())));
    return new ServedIdentity(self, ca);
  }

  get svid(): SelfSvid | undefined {
    return this.#self.current;
  }

  credentials(svid: SelfSvid = this.#self.current!): ServerIdentity {
    return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, clientCasPem: this.#ca().bundle.toPem() };
  }

  /**
   * Renews the SVID when due and hands the credentials to `serve` when they changed; `force` hands them over
   * anyway (the bundle changed). A new SVID becomes current only once `serve` took it: one the TLS stack refuses
   * (it throws) leaves the served one current, so /certs and readiness never describe an SVID nobody is served.
   */
  refresh(force: boolean, serve: (identity: ServerIdentity) => void): Promise<void> {
    const next = this.#refreshing.then(async () => {
      const signer = this.#self.signerFor(this.#ca());
      const fresh = this.#self.due(signer.authorityId) ? await this.#self.mint(signer) : undefined;
      if (!fresh && !force) return;
      serve(this.credentials(fresh));
      if (fresh) this.#self.adopt(fresh);
    });
    this.#refreshing = next.catch(() => {});
    return next;
  }
}
