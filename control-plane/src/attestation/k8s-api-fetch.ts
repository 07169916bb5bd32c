// A minimal HTTPS client for the Kubernetes API server (node:https): one CA, bounded time and body size.
// The attestation modules take it as an injected `HttpFetch`, so tests can point them at a local server; the
// federation's bundle fetch uses it too (with its own server check and error code).
import { request } from 'node:https';
import { TesseraError } from '../../../common/errors.js';

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export type HttpFetch = (url: string, init: HttpRequest) => Promise<HttpResponse>;

/** Where a pod finds the API server and its own credentials (the kubelet mounts these). */
export const IN_CLUSTER = Object.freeze({
  apiServer: 'https://kubernetes.default.svc',
  caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
  tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
});

export interface HttpsFetchOptions {
  /** The only CA trusted for the API server (the cluster CA), PEM. */
  readonly caPem: string | undefined;
  /** Whole-exchange deadline; default 5 s. */
  readonly timeoutMs?: number;
  /** Larger answers are refused; default 1 MiB (a JWKS or TokenReview is a few KiB). */
  readonly maxBodyBytes?: number;
  /** More node:tls options (e.g. checkServerIdentity); with `caPem: undefined` the system's roots are used. */
  readonly tlsOptions?: Readonly<Record<string, unknown>>;
  /** The code of every failure; default TESSERA_ERR_K8S_FETCH_FAILED. */
  readonly code?: 'TESSERA_ERR_K8S_FETCH_FAILED' | 'TESSERA_ERR_FEDERATION_FETCH_FAILED';
}

function failedWith(code: NonNullable<HttpsFetchOptions['code']>): (url: string, why: string) => TesseraError {
  return (url, why) => new TesseraError(code, `${new URL(url).origin}${new URL(url).pathname}: ${why}`);
}

export function createHttpsFetch(opts: HttpsFetchOptions): HttpFetch {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const limit = opts.maxBodyBytes ?? 1 << 20;
  const code = opts.code ?? 'TESSERA_ERR_K8S_FETCH_FAILED';
  const failed = failedWith(code);
  return (url, init) =>
    new Promise<HttpResponse>((resolve, reject) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return reject(new TesseraError(code, `"${url}" is not a URL`));
      }
      if (target.protocol !== 'https:') return reject(failed(url, 'only https is allowed'));
      const req = request(
        target,
        {
          method: init.method,
          headers: { accept: 'application/json', ...(init.headers ?? {}), ...(init.body !== undefined ? { 'content-length': String(Buffer.byteLength(init.body)) } : {}) },
          ca: opts.caPem,
          minVersion: 'TLSv1.2',
          agent: false,
          timeout: timeoutMs,
          ...opts.tlsOptions,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > limit) {
              req.destroy();
              reject(failed(url, `answer larger than ${limit} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (e) => reject(failed(url, e.message)));
        },
      );
      const deadline = setTimeout(() => {
        req.destroy();
        reject(failed(url, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => {
        req.destroy();
        reject(failed(url, `idle for ${timeoutMs} ms`));
      });
      req.on('error', (e) => reject(failed(url, e.message)));
      req.end(init.body);
    });
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
