// The two Kubernetes API calls discovery makes: a paginated list and a streamed watch (newline-delimited JSON
// events). The bearer token and CA are read from their files on every call — projected tokens rotate — and the
// token is never put in an error or a log line. Every failure is TESSERA_ERR_DISCOVERY_SOURCE_FAILED.
import { request } from 'node:https';
import { TesseraError } from '../../../common/errors.js';
import { createHttpsFetch, failedWith } from '../../../shared-io/https-fetch.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import type { Timers } from '../../../shared-io/timers.js';

const CODE = 'TESSERA_ERR_DISCOVERY_SOURCE_FAILED';
/** The most a mounted token or CA file may hold (read before every call: a FIFO or a device there is refused). */
const MAX_CREDENTIAL_BYTES = 1 << 20;
const failed = failedWith(CODE);

export interface KubernetesApiOptions {
  readonly apiServer: string;
  readonly tokenFile: string;
  readonly caFile: string;
  /** A list page's whole-exchange deadline; default 30 s. */
  readonly listTimeoutMs?: number;
  /** The watch's server-side timeout (timeoutSeconds); the client gives up after this + 30 s of silence. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** Items per list page (limit/continue); default 500. */
  readonly pageSize?: number;
  /** A list page's deadline runs here. */
  readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: { readonly metadata?: { readonly resourceVersion?: string }; readonly code?: number; readonly message?: string } & Record<string, unknown>;
}

/** A list or watch refused with an HTTP status (410 Gone: the resourceVersion is too old, list again). */
export function httpStatusOf(e: unknown): number | undefined {
  return e instanceof TesseraError && typeof e.details['status'] === 'number' ? (e.details['status'] as number) : undefined;
}

const MAX_LIST_PAGE_BYTES = 64 << 20;
const MAX_EVENT_BYTES = 16 << 20;
const MAX_LISTED_PAGES = 10_000;

/** The message of a Kubernetes Status body, bounded (it names the resource, never the caller's token). */
function statusMessage(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    return typeof m === 'string' ? `: ${m.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

export class KubernetesApiClient {
  constructor(private readonly opts: KubernetesApiOptions) {}

  private async credentials(): Promise<{ token: string; caPem: string }> {
    const read = async (path: string, what: string): Promise<string> => {
      try {
        return readSmallFile(path, MAX_CREDENTIAL_BYTES).trim();
      } catch (e) {
        throw new TesseraError(CODE, `cannot read the Kubernetes ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    };
    const [token, caPem] = await Promise.all([read(this.opts.tokenFile, 'token file'), read(this.opts.caFile, 'CA file')]);
    return { token, caPem };
  }

  /** Every item of a collection and the collection's resourceVersion, page by page. */
  async list(path: string, query: Readonly<Record<string, string>> = {}): Promise<{ items: unknown[]; resourceVersion: string }> {
    const { token, caPem } = await this.credentials();
    const fetch = createHttpsFetch({ caPem, timeoutMs: this.opts.listTimeoutMs ?? 30_000, maxBodyBytes: MAX_LIST_PAGE_BYTES, code: CODE, timers: this.opts.timers });
    const items: unknown[] = [];
    let cont = '';
    for (let page = 0; page < MAX_LISTED_PAGES; page++) {
      const url = this.url(path, { ...query, limit: String(this.opts.pageSize ?? 500), ...(cont ? { continue: cont } : {}) });
      const res = await fetch(url, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new TesseraError(CODE, `${failed(url, `HTTP ${res.status}`).message}${statusMessage(res.body)}`, { status: res.status });
      let body: { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
      try {
        body = JSON.parse(res.body);
      } catch {
        throw failed(url, 'the list is not JSON');
      }
      if (!Array.isArray(body.items ?? [])) throw failed(url, 'the list has no items array');
      items.push(...((body.items as unknown[] | undefined) ?? []));
      cont = typeof body.metadata?.continue === 'string' ? body.metadata.continue : '';
      if (!cont) return { items, resourceVersion: typeof body.metadata?.resourceVersion === 'string' ? body.metadata.resourceVersion : '' };
    }
    throw failed(this.url(path, {}), `more than ${MAX_LISTED_PAGES} pages`);
  }

  /**
   * Streams the events after `resourceVersion` to `onEvent` until the server ends the watch (resolves), the signal
   * aborts (resolves), or the stream fails (rejects; a refused watch carries its HTTP status).
   */
  async watch(path: string, resourceVersion: string, query: Readonly<Record<string, string>>, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const { token, caPem } = await this.credentials();
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 300;
    const url = this.url(path, { ...query, watch: '1', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) });
    const idleMs = (timeoutSeconds + 30) * 1000;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      let settled = false;
      const settle = (e?: Error): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        req.destroy();
        e ? reject(e) : resolve();
      };
      const onAbort = (): void => settle();
      signal.addEventListener('abort', onAbort);
      const req = request(url, { method: 'GET', headers: { accept: 'application/json', authorization: `Bearer ${token}` }, ca: caPem, minVersion: 'TLSv1.2', agent: false, timeout: idleMs }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 65_536) body += c;
          });
          res.on('end', () => settle(new TesseraError(CODE, `${failed(url, `HTTP ${status}`).message}${statusMessage(body)}`, { status })));
          res.on('error', (e) => settle(failed(url, e.message)));
          return;
        }
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let nl = pending.indexOf('\n');
          while (nl >= 0 && !settled) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line) {
              let event: WatchEvent;
              try {
                event = JSON.parse(line) as WatchEvent;
              } catch {
                return settle(failed(url, 'a watch event is not JSON'));
              }
              if (!event || typeof event !== 'object' || typeof event.type !== 'string' || !event.object || typeof event.object !== 'object') return settle(failed(url, 'a watch event has no type or object'));
              try {
                onEvent(event);
              } catch (e) {
                return settle(e as Error);
              }
            }
            nl = pending.indexOf('\n');
          }
          if (pending.length > MAX_EVENT_BYTES) settle(failed(url, `a watch event is larger than ${MAX_EVENT_BYTES} bytes`));
        });
        res.on('end', () => settle());
        res.on('error', (e) => settle(failed(url, e.message)));
        res.on('close', () => settle(failed(url, 'the watch stream was cut')));
      });
      req.on('timeout', () => settle(failed(url, `the watch was silent for ${idleMs} ms`)));
      req.on('error', (e) => settle(failed(url, e.message)));
      req.end();
    });
  }

  private url(path: string, query: Readonly<Record<string, string>>): string {
    const u = new URL(this.opts.apiServer + path);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u.toString();
  }
}
