// Kubernetes attestation as the issuer sees it: the projected token's signature, issuer, audience and expiry
// (K8sJwtAttestor, offline against the JWKS), then — when an API server is configured — a TokenReview proving
// the token is still bound to a live pod. Both must agree on namespace and service account.
import { TesseraError } from '../../../common/errors.js';
import type { AttestedIdentity } from './attested-identity.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import type { K8sJwtAttestor } from './k8s-jwt-attestor.js';
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

  constructor(jwt: K8sJwtAttestor, review?: TokenReviewSettings) {
    this.#jwt = jwt;
    this.#review = review;
  }

  check(): void {
    this.#jwt.check();
  }

  async attest(token: string): Promise<AttestedIdentity> {
    const identity = await this.#jwt.attest(token);
    const r = this.#review;
    if (!r) return identity;
    const reviewed = await reviewToken({ apiServer: r.apiServer, fetch: r.fetch, callerToken: r.callerToken(), token, audience: r.audience });
    const expected = identity.attestedAs.replace(/^k8s_psat:/, '');
    if (`ns/${reviewed.namespace}/sa/${reviewed.serviceAccount}` !== expected) {
      throw new TesseraError('TESSERA_ERR_K8S_TOKEN_REJECTED', `TokenReview names ns/${reviewed.namespace}/sa/${reviewed.serviceAccount}, the token ${expected}`);
    }
    return { ...identity, attestedAs: `${identity.attestedAs}/pod/${reviewed.podName ?? '?'}` };
  }
}
