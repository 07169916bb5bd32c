// The store's health at run time, seen from the operations that use it. Every failure is logged (each code at most
// once per interval, with how many were left out). A fault after which the store cannot be counted on to take
// writes (full, read-only, an I/O fault, damaged, unreachable) makes the control plane not ready; a write probe then
// retries on an interval, and once one succeeds with no failure since it started, the control plane is ready
// again. Without the probe a replica taken out of its Service would never see the write that brings it back. The
// probe must need what an issuance needs (open-store.ts): a small write succeeds on a disk that is still full.
// A damaged store stays not ready until the control plane restarts: damage does not heal.
import type { Clock } from '../../../common/clock.js';
import { isTesseraError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../logger.js';
import { unwritableFault } from '../store/store-faults.js';
import { FailureLog } from './failure-log.js';

export const STORE_PROBE_MS = 5_000;

const CORRUPT = 'TESSERA_ERR_STORE_CORRUPT';

export interface StoreHealthOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: ControlPlaneLogger;
  /** A write of the size and kind issuance makes, through the observed views (a failed probe is told to failed()). */
  readonly probe: () => Promise<unknown>;
  readonly probeMs?: number;
  readonly logEveryMs?: number;
}

interface Fault {
  readonly code: string;
  readonly sinceMs: number;
  lastMs: number;
}

export class StoreHealth {
  readonly failures: FailureLog;
  readonly #o: StoreHealthOptions;
  #fault: Fault | null = null;
  #timer: unknown;
  #closed = false;

  constructor(o: StoreHealthOptions) {
    this.#o = o;
    this.failures = new FailureLog(o.log, o.clock, o.logEveryMs);
  }

  /**
   * A store operation failed with `e` (as its caller gets it). A coded answer of another area (a compare-and-swap
   * that lost to another replica: TESSERA_ERR_CA_CONFLICT) is an outcome the caller handles, not a store failure.
   */
  readonly failed = (area: string, op: string, e: unknown): void => {
    if (isTesseraError(e) && !e.code.startsWith('TESSERA_ERR_STORE_')) return;
    this.failures.report('a store operation failed', e, { area, op });
    const code = unwritableFault(e);
    if (code === null) return;
    const prev = this.#fault;
    if (prev?.code === CORRUPT) return;
    const now = this.#o.clock.nowMs();
    this.#fault = { code, sinceMs: prev?.sinceMs ?? now, lastMs: now };
    if (code === CORRUPT) this.#o.log.error({ code }, 'the store is damaged: not ready until the control plane restarts on a sound store');
    else if (!prev) this.#o.log.error({ code }, 'the store cannot take writes: not ready until a write succeeds again');
    this.#schedule();
  };

  /** Why the control plane is not ready because of its store; undefined when it takes writes. */
  readonly notReadyReason = (): string | undefined => {
    const f = this.#fault;
    if (!f) return undefined;
    const since = new Date(f.sinceMs).toISOString();
    if (f.code === CORRUPT) return `the store is damaged (${f.code}, since ${since}): restore it and restart`;
    return `the store cannot take writes (${f.code}, since ${since})`;
  };

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#fault?.code === CORRUPT) return;
    this.#timer = this.#o.timers.setTimeout(() => void this.#probe(), this.#o.probeMs ?? STORE_PROBE_MS);
  }

  async #probe(): Promise<void> {
    const started = this.#o.clock.nowMs();
    try {
      await this.#o.probe();
      const f = this.#fault;
      // A failure since the probe began (a larger write than the probe's) keeps the control plane not ready.
      if (f && f.code !== CORRUPT && f.lastMs < started) {
        this.#fault = null;
        this.#o.log.info({ code: f.code, sinceMs: f.sinceMs }, 'the store takes writes again: ready');
      }
    } catch {
      // Told to failed() by the observed view it wrote through: the fault stays, the probe runs again.
    } finally {
      this.#timer = undefined;
      if (this.#fault) this.#schedule();
    }
  }
}
