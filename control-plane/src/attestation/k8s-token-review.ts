// Asks the API server (TokenReview) whether a projected service-account token is valid for the tessera
// audience and still bound to a live pod; the API server checks the bound pod exists with the same UID.
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import { fetchJson } from './k8s-api-fetch.js';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

export interface TokenReviewOptions {
  readonly apiServer: string;
  readonly fetch: HttpFetch;
  /** The control plane's own service-account token (RBAC: create tokenreviews). */
  readonly callerToken: string;
  /** The workload's projected token under review. */
  readonly token: string;
  /** Audience the token must carry (the projected volume asks for "tessera"). */
  readonly audience: string;
  /** Default true: refuse tokens that are not bound to a pod (legacy Secret tokens, unbound TokenRequests). */
  readonly requirePodBinding?: boolean;
}

export interface ReviewedIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly serviceAccountUid?: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly audiences: readonly string[];
}

/** `reason`: a fixed phrase for the audit row (k8s-refusal.ts); `message` may quote the API server. */
function rejected(reason: string, message: string, details: Record<string, unknown> = {}): TesseraError {
  return new TesseraError('TESSERA_ERR_K8S_TOKEN_REJECTED', message, { ...details, reason: `TokenReview: ${reason}` });
}

// Namespace: DNS label; service account: DNS subdomain (Kubernetes name rules).
export const NAMESPACE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const SA = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function firstExtra(extra: unknown, key: string): string | undefined {
  const v = (extra as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(v) && v.length === 1 && typeof v[0] === 'string' && v[0] !== '' ? v[0] : undefined;
}

/**
 * Returns who the token belongs to, or throws TESSERA_ERR_K8S_TOKEN_REJECTED (Kubernetes said no, or the
 * answer does not prove what attestation needs) / TESSERA_ERR_K8S_FETCH_FAILED (could not ask).
 * Messages are for the control plane's log; callers answer the workload with a generic denial.
 */
export async function reviewToken(opts: TokenReviewOptions): Promise<ReviewedIdentity> {
  if (opts.token === '' || /\s/.test(opts.token)) throw rejected('token empty or malformed', 'the token is empty or malformed');
  const url = `${opts.apiServer.replace(/\/+$/, '')}${TOKEN_REVIEW_PATH}`;
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token: opts.token, audiences: [opts.audience] },
  });
  let answer: { kind?: unknown; status?: Record<string, unknown> } | null;
  try {
    answer = (await fetchJson(opts.fetch, url, { method: 'POST', headers: { authorization: `Bearer ${opts.callerToken}`, 'content-type': 'application/json' }, body }, [200, 201])) as typeof answer;
  } catch (e) {
    // An RBAC 403 (no tokenreviews/create), a 500, a timeout, an oversized answer: named in the audit row.
    if (isTesseraError(e)) throw new TesseraError(e.code, e.message, { ...e.details, reason: `TokenReview: ${String(e.details['reason'] ?? 'request failed')}` });
    throw e;
  }
  if (answer?.kind !== 'TokenReview' || typeof answer.status !== 'object' || answer.status === null) {
    throw new TesseraError('TESSERA_ERR_K8S_FETCH_FAILED', `${TOKEN_REVIEW_PATH}: the answer is not a TokenReview`, { reason: 'TokenReview: the answer is not a TokenReview' });
  }
  const status = answer.status;
  if (status.authenticated !== true) {
    throw rejected('not authenticated', `the API server did not authenticate the token${typeof status.error === 'string' ? `: ${status.error}` : ''}`);
  }
  // With spec.audiences set, the API server answers the audiences the token is valid for; absence is a no.
  const audiences = Array.isArray(status.audiences) ? status.audiences.filter((a): a is string => typeof a === 'string') : [];
  if (!audiences.includes(opts.audience)) throw rejected('audience missing', `the token is not valid for audience "${opts.audience}"`, { audiences });
  const user = (status.user ?? {}) as { username?: unknown; uid?: unknown; extra?: unknown };
  const m = typeof user.username === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user.username) : null;
  if (!m || !NAMESPACE.test(m[1]!) || !SA.test(m[2]!)) throw rejected('not a service account', `the token does not belong to a service account (user "${String(user.username)}")`);
  const podName = firstExtra(user.extra, POD_NAME);
  const podUid = firstExtra(user.extra, POD_UID);
  if ((opts.requirePodBinding ?? true) && (podName === undefined || podUid === undefined)) {
    throw rejected('not bound to a pod', 'the token is not bound to a pod (use a projected service-account token)');
  }
  return {
    namespace: m[1]!,
    serviceAccount: m[2]!,
    ...(typeof user.uid === 'string' ? { serviceAccountUid: user.uid } : {}),
    ...(podName !== undefined ? { podName } : {}),
    ...(podUid !== undefined ? { podUid } : {}),
    audiences,
  };
}

/** spiffe://<td>/ns/<namespace>/sa/<service account> (DESIGN section 2). */
export function kubernetesSpiffeId(trustDomain: string, who: Pick<ReviewedIdentity, 'namespace' | 'serviceAccount'>): SpiffeId {
  return SpiffeId.fromSegments(TrustDomain.parse(trustDomain), 'ns', who.namespace, 'sa', who.serviceAccount);
}
