// Kubernetes attestation as the issuer sees it: the projected token's signature, issuer, audience and expiry
// (K8sJwtAttestor, offline against the JWKS), then — when an API server is configured — a TokenReview proving
// the token is still bound to a live pod. Both must agree on namespace and service account. A refusal is logged at
// warn with its reason and the account the token claims, and carries them to the audit row (k8s-refusal.ts).
import { TesseraError } from '../../../common/errors.js';
import type { ControlPlaneLogger } from '../logger.js';
import type { AttestedIdentity } from './attested-identity.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import type { K8sJwtAttestor } from './k8s-jwt-attestor.js';
import { kubernetesRefusal } from './k8s-refusal.js';
import { reviewToken } from './k8s-token-review.js';

/** What the issuer needs from any Kubernetes attestor. */
export interface KubernetesAttestor {
  check(): void;
  attest(token: string): Promise<AttestedIdentity>;
}

export interface TokenReviewSettings {
  readonly apiServer: string;
  readonly fetch: HttpFetch;
  /** Read at each review: the kubelet rotates the control plane's own token. */
  readonly callerToken: () => string;
  readonly audience: string;
}

export class K8sAttestation implements KubernetesAttestor {
  readonly #jwt: K8sJwtAttestor;
  readonly #review: TokenReviewSettings | undefined;
  readonly #log: Pick<ControlPlaneLogger, 'warn'> | undefined;

  constructor(jwt: K8sJwtAttestor, review?: TokenReviewSettings, log?: Pick<ControlPlaneLogger, 'warn'>) {
    this.#jwt = jwt;
    this.#review = review;
    this.#log = log;
  }

  check(): void {
    this.#jwt.check();
  }

  async attest(token: string): Promise<AttestedIdentity> {
    try {
      return await this.#attest(token);
    } catch (e) {
      const refusal = kubernetesRefusal(e, token);
      const { reason, claimed, reviewed } = refusal.details;
      this.#log?.warn({ code: refusal.code, reason, ...(claimed ? { claimed } : {}), ...(reviewed ? { reviewed } : {}) }, 'kubernetes attestation refused');
      throw refusal;
    }
  }

  async #attest(token: string): Promise<AttestedIdentity> {
    const identity = await this.#jwt.attest(token);
    const r = this.#review;
    if (!r) return identity;
    const reviewed = await reviewToken({ apiServer: r.apiServer, fetch: r.fetch, callerToken: r.callerToken(), token, audience: r.audience });
    const expected = identity.attestedAs.replace(/^k8s_psat:/, '');
    if (`ns/${reviewed.namespace}/sa/${reviewed.serviceAccount}` !== expected) {
      const named = `ns/${reviewed.namespace}/sa/${reviewed.serviceAccount}`;
      // The cluster and a correctly signed token disagree: worth an alert, so the row names both accounts.
      throw new TesseraError('TESSERA_ERR_K8S_TOKEN_REJECTED', `TokenReview names ${named}, the token ${expected}`, { reason: 'TokenReview names another service account', reviewed: named });
    }
    return { ...identity, attestedAs: `${identity.attestedAs}/pod/${reviewed.podName ?? '?'}` };
  }
}
