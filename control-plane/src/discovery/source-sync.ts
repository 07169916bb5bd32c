// Whether the endpoint sources that list asynchronously (Kubernetes) have given their first view, as client-go's
// HasSynced: until then a new Discovery/Watch stream waits for its first full snapshot and /ready says why, so a
// replica that just started does not hand reconnecting proxies services emptied only because it has not listed yet.
// Bounded: past the deadline (an API server down or slow) what the registry holds goes out, and the log says so.
import type { Timers } from '../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../logger.js';

export interface SourceSyncOptions {
  /** The sources whose first view is awaited; none: synced from the start. */
  readonly pending: readonly string[];
  /** How long to wait at most; 0: not at all. */
  readonly deadlineMs: number;
  readonly timers: Timers;
  readonly log: Pick<ControlPlaneLogger, 'info' | 'warn'>;
}

export class SourceSync {
  readonly #o: SourceSyncOptions;
  readonly #pending: Set<string>;
  readonly #waiting: (() => void)[] = [];
  #timer: unknown;
  #gaveUp = false;

  constructor(opts: SourceSyncOptions) {
    this.#o = opts;
    this.#pending = new Set(opts.pending);
    if (this.#pending.size > 0 && opts.deadlineMs > 0) this.#timer = opts.timers.setTimeout(() => this.#deadline(), opts.deadlineMs);
    else this.#gaveUp = this.#pending.size > 0;
  }

  /** Every awaited source has reported, or the deadline passed. */
  get synced(): boolean {
    return this.#pending.size === 0 || this.#gaveUp;
  }

  /** For /ready: undefined once synced. */
  readonly notReadyReason = (): string | undefined =>
    this.synced ? undefined : `endpoint source ${[...this.#pending].sort().join(', ')} has not synced yet (its first list); streams wait for it up to ${this.#o.deadlineMs / 1000} s`;

  /** Runs `fn` once synced (now, if already). */
  whenSynced(fn: () => void): void {
    if (this.synced) fn();
    else this.#waiting.push(fn);
  }

  /** A source gave a view. */
  reported(name: string): void {
    if (!this.#pending.delete(name) || this.#pending.size > 0) return;
    this.#clear();
    if (!this.#gaveUp) this.#release();
  }

  stop(): void {
    this.#clear();
    this.#waiting.length = 0;
  }

  #deadline(): void {
    this.#timer = undefined;
    if (this.synced) return;
    this.#gaveUp = true;
    this.#o.log.warn({ pending: [...this.#pending].sort(), waitedMs: this.#o.deadlineMs }, 'endpoint sources not synced by the deadline: streams get what the registry holds now (their services may be empty until the source syncs)');
    this.#release();
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #release(): void {
    for (const fn of this.#waiting.splice(0)) fn();
  }
}
