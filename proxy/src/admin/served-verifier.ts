// Owns "verify in use": after every identity swap a fresh handshake to our own inbound listener must serve the new
// serial; the last check feeds readiness, /certs, a metric and a log line, and a failed check is retried.
import type { Logger } from 'pino';
import type { Timers } from '../../../shared-io/timers.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import type { ServedCheck } from './certs-report.js';
import { probeServedSerial, type ServedTarget } from './served-check.js';

export interface ServedVerifierOptions {
  readonly identity: IdentityStore;
  /** Where the inbound listener is bound (undefined without one: nothing to check). */
  readonly target: () => ServedTarget | undefined;
  readonly metrics: ProxyMetrics;
  readonly log: Logger;
  readonly nowMs: () => number;
  readonly timers: Timers;
  /** How often a failed check is tried again (default 5 s). */
  readonly recheckMs?: number;
}

export class ServedVerifier {
  readonly #o: ServedVerifierOptions;
  #last: ServedCheck | null = null;
  #unsubscribe: (() => void) | undefined;
  #recheck: unknown;
  #stopped = true;

  constructor(opts: ServedVerifierOptions) {
    this.#o = opts;
  }

  /** The last completed check (null before the first). */
  get last(): ServedCheck | null {
    return this.#last;
  }

  /** Readiness: the reason while the listener serves another serial than the installed one. */
  notReadyReason(): string | undefined {
    const c = this.#last;
    return c && !c.match ? `the inbound listener serves serial ${c.served}, not the installed ${c.serial}` : undefined;
  }

  /** Checks now and after every swap; retries a mismatch until it clears. */
  start(): void {
    const { identity } = this.#o;
    this.#stopped = false;
    this.#unsubscribe = identity.subscribe((s) => void this.verify(s));
    if (identity.current) void this.verify(identity.current);
  }

  /**
   * No check after this, nor the record of one in flight: the drain stops it before it closes the listeners, which
   * a self-handshake then cannot reach (before, a renewal during a drain counted a `mismatch` and logged an error
   * every 5 s until exit: audit 55b F4).
   */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#cancelRecheck();
  }

  /** True while a failed check waits for its retry. */
  get rechecking(): boolean {
    return this.#recheck !== undefined;
  }

  // A timer only while a check failed: an idle sidecar's loop is not woken to find nothing to do.
  #scheduleRecheck(): void {
    if (this.#recheck !== undefined || this.#stopped) return;
    this.#recheck = this.#o.timers.setTimeout(() => {
      this.#recheck = undefined;
      const current = this.#o.identity.current;
      if (this.#last && !this.#last.match && current) void this.verify(current);
    }, this.#o.recheckMs ?? 5_000);
  }

  #cancelRecheck(): void {
    if (this.#recheck === undefined) return;
    this.#o.timers.clearTimeout(this.#recheck);
    this.#recheck = undefined;
  }

  async verify(snapshot: IdentitySnapshot): Promise<void> {
    const { identity, metrics, log, nowMs } = this.#o;
    const target = this.#o.target();
    if (!target?.port) return;
    const served = await probeServedSerial(snapshot, target);
    if (identity.current !== snapshot || this.#stopped) return; // superseded meanwhile (the next check covers it), or stopped
    const match = served === snapshot.serial;
    metrics.servedCheck(match ? 'match' : 'mismatch');
    const check = { serial: snapshot.serial, served, match, checkedAt: new Date(nowMs()).toISOString(), afterInstallMs: nowMs() - snapshot.installedAtMs };
    this.#last = check;
    if (match) {
      this.#cancelRecheck();
      log.info({ serial: snapshot.serial, afterInstallMs: check.afterInstallMs }, 'new SVID verified in use');
    } else {
      this.#scheduleRecheck();
      log.error({ serial: snapshot.serial, served }, 'the inbound listener does not serve the installed SVID');
    }
  }
}
