// The Kubernetes side of the control plane's HTTPS client (shared-io/https-fetch.ts): where a pod finds its API
// server and how soon a failed call is tried again (one rule for attestation and discovery), and JSON answers
// checked by status with errors that name the URL path, never the bearer token.
import type { BackoffOptions } from '../../../common/backoff.js';
import { failedWith, type HttpFetch, type HttpRequest } from '../../../shared-io/https-fetch.js';

/** Where the kubelet mounts a pod's service-account token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The wait before trying the API server again after a failure (common/backoff.ts: 0.5 s doubling to 30 s, ±20 %):
 * the discovery watches and the attestor's key fetch alike, so an API server that comes back is seen within
 * seconds, and replicas that lost it together do not come back in step.
 */
export const API_SERVER_RETRY: BackoffOptions = Object.freeze({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });

/** The default API server, as the config schemas describe it. */
export const IN_CLUSTER_API_SERVER_TEXT = 'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT in a pod, else https://kubernetes.default.svc';

export interface InClusterDefaults {
  readonly apiServer: string;
  readonly caFile: string;
  readonly tokenFile: string;
}

/**
 * Where a pod finds the API server (the variables the kubelet sets in every pod, else the Service's DNS name) and its
 * own credentials: the one rule for attestation and discovery alike.
 */
export function inClusterDefaults(env: Readonly<Record<string, string | undefined>>): InClusterDefaults {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] || '443';
  return {
    apiServer: host ? `https://${host.includes(':') ? `[${host}]` : host}:${port}` : 'https://kubernetes.default.svc',
    caFile: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
    tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
  };
}

/** A configured API server must be https (the bearer token goes with every call); the schemas' check. */
export const httpsOnly = (v: string): string | null => (v.startsWith('https://') ? null : `"${v}" is not an https:// URL`);

/** The configured API server or the in-cluster one, without trailing `/` (paths are appended to it). */
export function apiServerUrl(configured: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return (configured ?? inClusterDefaults(env).apiServer).replace(/\/+$/, '');
}

/** Parses a JSON answer after checking its status; errors name the URL path, never the bearer token. */
export async function fetchJson(fetch: HttpFetch, url: string, init: HttpRequest, okStatuses: readonly number[] = [200]): Promise<unknown> {
  const failed = failedWith('TESSERA_ERR_K8S_FETCH_FAILED');
  const res = await fetch(url, init);
  if (!okStatuses.includes(res.status)) throw failed(url, `HTTP ${res.status}`);
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw failed(url, 'the answer is not JSON');
  }
}
