// Keeps the Kubernetes attestor's JWKS file current from the API server (OIDC discovery, then /openid/v1/jwks):
// fetched at start and on an interval, written atomically; a failed fetch keeps the last good file.
import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import { writeFileAtomicSync } from '../ca/atomic-file.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import { fetchK8sJwks, jwksDocument } from './k8s-oidc-discovery.js';

export interface JwksRefresherOptions {
  readonly apiServer: string;
  readonly fetch: HttpFetch;
  readonly bearerToken: () => string | undefined;
  readonly issuer: string;
  readonly file: string;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly onResult: (ok: boolean, detail: string) => void;
}

export class JwksRefresher {
  readonly #o: JwksRefresherOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: JwksRefresherOptions) {
    this.#o = opts;
  }

  /** One fetch now; resolves to whether it succeeded (the caller decides whether start-up may go on). */
  async refresh(): Promise<boolean> {
    const o = this.#o;
    try {
      const token = o.bearerToken();
      const jwks = await fetchK8sJwks({ apiServer: o.apiServer, fetch: o.fetch, clock: o.clock, expectedIssuer: o.issuer, ...(token ? { bearerToken: token } : {}) });
      writeFileAtomicSync(o.file, jwksDocument(jwks), 0o644);
      o.onResult(true, `${jwks.keys.length} key(s)`);
      return true;
    } catch (e) {
      o.onResult(false, describeError(e));
      return false;
    }
  }

  start(): void {
    this.#timer = setInterval(() => void this.refresh(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
