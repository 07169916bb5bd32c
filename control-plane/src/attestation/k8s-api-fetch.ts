// The Kubernetes side of the control plane's HTTPS client (shared-io/https-fetch.ts): where a pod finds its API
// server, and JSON answers checked by status with errors that name the URL path, never the bearer token.
import { failedWith, type HttpFetch, type HttpRequest } from '../../../shared-io/https-fetch.js';

/** Where a pod finds the API server and its own credentials (the kubelet mounts these). */
export const IN_CLUSTER = Object.freeze({
  apiServer: 'https://kubernetes.default.svc',
  caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
  tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
});

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
