// When a long-running process gives memory back: once right after start-up (the garbage of loading modules,
// configs and the first snapshots), then whenever the process has been quiet (under 1 % of a CPU) for a whole check
// period, and is still quiet a second later, while the heap holds grown space a burst of traffic left: a grown young
// generation, or resident memory grown well past its size after the last trim (V8 shrinks the young space and
// collects the old generation by itself after a burst, but keeps the freed pages resident: a sidecar idled at 124 MB after a connection-per-request
// burst, 96 MB after one trim; docs/operations.md, "Memory at idle"). Never under load: a trim is a full
// stop-the-world collection (30–110 ms on the bench VM), and a busy process would grow the space back at once.
import type { HeapTrim } from './heap-trim.js';
import type { Timers } from './timers.js';

/** How often the quiet is checked; also the shortest gap between two idle trims. */
export const HEAP_TRIM_CHECK_MS = 30_000;
/**
 * After a quiet period, how long the quiet must last again before the trim: traffic that came back in the period's
 * last moments (its share still low) would otherwise meet the pause. One timer, only while a trim is due.
 */
export const HEAP_TRIM_CONFIRM_MS = 1_000;
/** A period counts as quiet when the process used less than this share of a CPU in it (1 % = 300 ms in 30 s). */
export const HEAP_TRIM_QUIET_SHARE = 0.01;
/** Young space below this is what V8 keeps anyway after a trim and a little traffic: not worth a collection. */
export const HEAP_TRIM_MIN_YOUNG_BYTES = 4 * 1024 * 1024;
/** Growth of resident memory since the last trim that is worth a collection (what a burst left resident). */
export const HEAP_TRIM_MIN_GROWTH_BYTES = 8 * 1024 * 1024;

export type HeapTrimCause = 'startup' | 'idle';

export interface IdleHeapTrimDeps {
  readonly trim: HeapTrim;
  readonly timers: Timers;
  readonly nowMs: () => number;
  /** Share of a CPU the process used since the previous call. */
  readonly busyShare: () => number;
  readonly youngBytes: () => number;
  /** The process's resident memory now. */
  readonly residentBytes: () => number;
  readonly onTrim?: (cause: HeapTrimCause, ms: number) => void;
  readonly onError?: (err: unknown) => void;
}

export class IdleHeapTrim {
  readonly #deps: IdleHeapTrimDeps;
  #interval: unknown;
  #confirm: unknown;
  #running = false;
  #failed = false;
  /** Resident memory right after the last trim: growth is measured from it. */
  #afterTrimBytes = 0;

  constructor(deps: IdleHeapTrimDeps) {
    this.#deps = deps;
  }

  /** Trims once now (start-up), then checks every HEAP_TRIM_CHECK_MS. */
  async start(): Promise<void> {
    await this.#trim('startup');
    if (this.#failed) return;
    this.#deps.busyShare(); // the first period starts now, not at the start-up work the trim follows
    this.#interval ??= this.#deps.timers.setInterval(() => this.#check(), HEAP_TRIM_CHECK_MS);
  }

  stop(): void {
    if (this.#interval !== undefined) this.#deps.timers.clearInterval(this.#interval);
    if (this.#confirm !== undefined) this.#deps.timers.clearTimeout(this.#confirm);
    this.#interval = undefined;
    this.#confirm = undefined;
  }

  #check(): void {
    const quiet = this.#deps.busyShare() < HEAP_TRIM_QUIET_SHARE; // also starts the confirmation's window
    if (!quiet || this.#confirm !== undefined || !this.#grown()) return;
    this.#confirm = this.#deps.timers.setTimeout(() => {
      this.#confirm = undefined;
      if (this.#deps.busyShare() < HEAP_TRIM_QUIET_SHARE) void this.#trim('idle');
    }, HEAP_TRIM_CONFIRM_MS);
  }

  #grown(): boolean {
    return this.#deps.youngBytes() >= HEAP_TRIM_MIN_YOUNG_BYTES || this.#deps.residentBytes() - this.#afterTrimBytes >= HEAP_TRIM_MIN_GROWTH_BYTES;
  }

  async #trim(cause: HeapTrimCause): Promise<boolean> {
    if (this.#running || this.#failed) return false;
    this.#running = true;
    const t0 = this.#deps.nowMs();
    try {
      await this.#deps.trim();
      this.#afterTrimBytes = this.#deps.residentBytes();
      this.#deps.onTrim?.(cause, this.#deps.nowMs() - t0);
      return true;
    } catch (e) {
      // The door is shut for this process (a permission model without --allow-inspector, say): said once, not every
      // period.
      this.stop();
      this.#failed = true;
      this.#deps.onError?.(e);
      return false;
    } finally {
      this.#running = false;
    }
  }
}
