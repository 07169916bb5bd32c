// A minimal HTTPS client (node:https) for the control plane's outbound calls — the Kubernetes API server, federated
// bundle endpoints: one trust anchor, bounded time and body size, every failure one coded error. Callers take it as an
// injected `HttpFetch`, so tests can point them at a local server.
import { request } from 'node:https';
import { type ErrorCode, TesseraError } from '../common/errors.js';
import type { Timers } from './timers.js';

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

export interface HttpsFetchOptions {
  /**
   * The only CA trusted (PEM); undefined: the system's roots. A function is asked at each request: a mounted CA
   * that is replaced (a cluster CA rotation) is trusted from the next call on.
   */
  readonly caPem: string | undefined | (() => string | undefined);
  /** Whole-exchange deadline; default 5 s. */
  readonly timeoutMs?: number;
  /** Larger answers are refused; default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** More node:tls options (e.g. checkServerIdentity); with `caPem: undefined` the system's roots are used. */
  readonly tlsOptions?: Readonly<Record<string, unknown>>;
  /** The code of every failure (the caller's area: Kubernetes API, federation bundle endpoint). */
  readonly code: ErrorCode;
  /** The whole-exchange deadline runs here; it holds the process while it waits, as it always has. */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
}

/** A coded failure naming the URL's origin and path only (never a query or a bearer token). */
export function failedWith(code: ErrorCode): (url: string, why: string) => TesseraError {
  // `why` alone (HTTP 403, no answer within 5000 ms, ...) is the refusal's reason in an audit row (audit 55c F3).
  return (url, why) => new TesseraError(code, `${new URL(url).origin}${new URL(url).pathname}: ${why}`, { reason: why });
}

export function createHttpsFetch(opts: HttpsFetchOptions): HttpFetch {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const limit = opts.maxBodyBytes ?? 1 << 20;
  const code = opts.code;
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
          ca: typeof opts.caPem === 'function' ? opts.caPem() : opts.caPem,
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
      const deadline = opts.timers.setTimeout(
        () => {
          req.destroy();
          reject(failed(url, `no answer within ${timeoutMs} ms`));
        },
        timeoutMs,
        'keep-alive',
      );
      req.on('close', () => opts.timers.clearTimeout(deadline));
      req.on('timeout', () => {
        req.destroy();
        reject(failed(url, `idle for ${timeoutMs} ms`));
      });
      req.on('error', (e) => reject(failed(url, e.message)));
      req.end(init.body);
    });
}
