// One Kubernetes collection kept current in memory the way client-go's reflector does it: list, then watch from
// the list's resourceVersion; a watch the server ends is resumed from the last version seen; 410 Gone (the version
// is too old) lists again; any other failure is reported and retried with jittered backoff.
import { type BackoffOptions, backoffDelay } from '../../../common/backoff.js';
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import { API_SERVER_RETRY } from '../attestation/k8s-api-fetch.js';
import { type KubernetesApiClient, type WatchEvent, httpStatusOf } from './kubernetes-api-client.js';

export interface ListWatchOptions<T> {
  readonly api: KubernetesApiClient;
  /** The collection, e.g. /api/v1/pods or /apis/discovery.k8s.io/v1/namespaces/x/endpointslices. */
  readonly path: string;
  /** labelSelector / fieldSelector, the same for the list and the watch. */
  readonly query?: Readonly<Record<string, string>>;
  /** What is kept of each object (keep it small: a cluster has many pods). */
  readonly project: (obj: Record<string, unknown>) => T;
  /** After the initial list, each re-list, and each event that changed the items. */
  readonly onChange: () => void;
  readonly onError: (e: Error) => void;
  readonly timers: Timers;
  readonly clock: Clock;
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
}

/** A watch that ends sooner than this without an event counts as a failure (no tight reconnect loop). */
const SHORT_WATCH_MS = 1_000;

interface Meta {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly resourceVersion?: string };
}

function keyOf(obj: Meta): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/** Gone: the watch's resourceVersion is older than the server keeps; only a fresh list recovers. */
class Gone extends Error {}

export class ListWatch<T> {
  /** "namespace/name" → the projection of the object. */
  readonly items = new Map<string, T>();
  private resourceVersion = '';
  private listed = false;
  private stopped = true;
  private abort: AbortController | undefined;
  private sleeping: { handle: unknown; wake: () => void } | undefined;

  constructor(private readonly opts: ListWatchOptions<T>) {}

  /** True once the first list has completed. */
  get synced(): boolean {
    return this.listed;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    if (this.sleeping) {
      this.opts.timers.clearTimeout(this.sleeping.handle);
      this.sleeping.wake();
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) {
          await this.list();
          failures = 0;
        }
        const began = this.opts.clock.nowMs();
        const events = await this.watch();
        if (events === 0 && this.opts.clock.nowMs() - began < SHORT_WATCH_MS) await this.sleep(backoffDelay(failures++, this.opts.backoff ?? API_SERVER_RETRY, this.opts.random));
        else failures = 0;
      } catch (e) {
        if (this.stopped) break;
        // A watch's version expired: list again at once (a list refused with 410 backs off like any failure).
        if ((e instanceof Gone || httpStatusOf(e) === 410) && this.resourceVersion) {
          this.resourceVersion = '';
          continue;
        }
        this.opts.onError(e as Error);
        await this.sleep(backoffDelay(failures++, this.opts.backoff ?? API_SERVER_RETRY, this.opts.random));
      }
    }
  }

  private async list(): Promise<void> {
    const { items, resourceVersion } = await this.opts.api.list(this.opts.path, this.opts.query);
    if (this.stopped) return;
    this.items.clear();
    for (const obj of items) {
      if (obj && typeof obj === 'object') this.items.set(keyOf(obj as Meta), this.opts.project(obj as Record<string, unknown>));
    }
    this.resourceVersion = resourceVersion;
    this.listed = true;
    this.opts.onChange();
  }

  /** One watch; resolves with the number of events seen when the server ends it. */
  private async watch(): Promise<number> {
    if (this.stopped) return 1;
    this.abort = new AbortController();
    let events = 0;
    await this.opts.api.watch(this.opts.path, this.resourceVersion, this.opts.query ?? {}, (e) => {
      events++;
      this.apply(e);
    }, this.abort.signal);
    return events;
  }

  private apply(e: WatchEvent): void {
    if (e.type === 'ERROR') {
      if (e.object.code === 410) throw new Gone('resourceVersion too old');
      throw new Error(`watch error event: ${String(e.object.code ?? '')} ${String(e.object.message ?? '').slice(0, 200)}`.trim());
    }
    const rv = e.object.metadata?.resourceVersion;
    if (typeof rv === 'string' && rv) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return;
    const key = keyOf(e.object);
    if (e.type === 'DELETED') {
      if (!this.items.delete(key)) return;
    } else if (e.type === 'ADDED' || e.type === 'MODIFIED') {
      const next = this.opts.project(e.object);
      const before = this.items.get(key);
      this.items.set(key, next);
      // Most pod events are status updates the projection does not keep: no change to report.
      if (before !== undefined && JSON.stringify(before) === JSON.stringify(next)) return;
    } else return;
    this.opts.onChange();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      if (this.stopped) return wake();
      const handle = this.opts.timers.setTimeout(() => {
        this.sleeping = undefined;
        wake();
      }, ms);
      this.sleeping = { handle, wake };
    });
  }
}
