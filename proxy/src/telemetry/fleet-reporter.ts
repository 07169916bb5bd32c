// The proxy's report to the control plane's fleet view (Config/Report): the SVID each inbound listener actually
// serves (read by a fresh handshake to it, as /certs does) and when that was checked, plus the denials per policy.
// Sent after start, after every SVID rotation and on an interval; a failure is logged at debug and the next interval
// tries again. Nothing here is on the request path: traffic never waits for, or fails with, a report.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { type DenialCountMsg, type ProxyReportMsg, REPORT_LIMITS, type ServedSvidMsg } from '../../../common/contract/config-v1.js';
import { describeError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ServedLeaf, ServedTarget } from '../admin/served-check.js';
import type { DenialTally } from '../authz/denial-tally.js';
import type { IdentitySnapshot } from '../identity/identity-snapshot.js';
import type { IdentityStore } from '../identity/identity-store.js';

export const DEFAULT_REPORT_INTERVAL_MS = 30_000;
/**
 * Largest report built, in (estimated) bytes: under the control plane's default 64 KiB request cap. Only denial
 * rows can grow that far (256 of them with long caller IDs); the least recent go first.
 */
export const REPORT_BUDGET_BYTES = 48 * 1024;

/** An inbound listener to check: its config name and where it is bound (port undefined before it started). */
export interface ReportedListener {
  readonly name: string;
  readonly host: string;
  readonly port: number | undefined;
}

export type ReportResult = 'sent' | 'failed';

export interface FleetReporterOptions {
  /** Config/Report over mTLS with the current SVID; rejects on any failure. */
  readonly send: (msg: ProxyReportMsg) => Promise<unknown>;
  readonly identity: Pick<IdentityStore, 'current' | 'subscribe'>;
  readonly listeners: () => readonly ReportedListener[];
  /** A fresh handshake to one of our listeners: the leaf it serves (null on failure). */
  readonly probe: (snapshot: IdentitySnapshot, target: ServedTarget) => Promise<ServedLeaf | null>;
  readonly denials: Pick<DenialTally, 'rows'>;
  /** Stable for the life of the process (processInstance()). */
  readonly instance: string;
  readonly nowMs: () => number;
  readonly timers: Timers;
  readonly intervalMs?: number;
  readonly log: Logger;
  readonly onResult?: (r: ReportResult) => void;
}

export class FleetReporter {
  readonly #o: FleetReporterOptions;
  #served: ServedSvidMsg[] = [];
  #checkedAtMs = 0;
  /** The serial the last probe was made for, and whether every listener served it then. */
  #probedSerial: string | undefined;
  #probeClean = false;
  #busy = false;
  #again: 'probe' | 'send' | undefined;
  #stopped = false;
  #interval: unknown;
  #unsubscribe: (() => void) | undefined;

  constructor(opts: FleetReporterOptions) {
    this.#o = opts;
  }

  /** Reports now, after every new SVID, and every interval (checking the listeners again while one did not match). */
  start(): void {
    const { identity, timers } = this.#o;
    this.#unsubscribe = identity.subscribe((s) => {
      // A bundle-only update keeps the leaf: nothing new is served.
      if (s.serial !== this.#probedSerial) this.#trigger(true);
    });
    this.#interval = timers.setInterval(() => this.#trigger(!this.#probeClean), this.#o.intervalMs ?? DEFAULT_REPORT_INTERVAL_MS);
    this.#trigger(true);
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#interval !== undefined) this.#o.timers.clearInterval(this.#interval);
  }

  /** The report as it stands: the last check of the listeners and the denial rows now, within the bounds. */
  build(): ProxyReportMsg {
    const denials: DenialCountMsg[] = this.#o.denials
      .rows()
      .slice(0, REPORT_LIMITS.denials)
      .map((r) => ({ policy: r.policy, outcome: r.outcome, count: String(r.count), last_at_unix_ms: String(Math.floor(r.lastAtMs)), last_caller: r.lastCaller }));
    const msg: ProxyReportMsg = { instance: this.#o.instance, checked_at_unix_ms: String(Math.floor(this.#checkedAtMs)), served: this.#served, denials };
    return withinBudget(msg);
  }

  /** One cycle at a time; triggers during a cycle run once after it (a check of the listeners wins over a send). */
  #trigger(probe: boolean): void {
    if (this.#stopped) return;
    if (this.#busy) {
      this.#again = probe || this.#again === 'probe' ? 'probe' : 'send';
      return;
    }
    this.#busy = true;
    void this.#cycle(probe).finally(() => {
      this.#busy = false;
      const again = this.#again;
      this.#again = undefined;
      if (again) this.#trigger(again === 'probe');
    });
  }

  async #cycle(probe: boolean): Promise<void> {
    if (probe) await this.#probe();
    if (this.#stopped) return;
    try {
      await this.#o.send(this.build());
      this.#o.onResult?.('sent');
    } catch (e) {
      this.#o.onResult?.('failed');
      this.#o.log.debug({ err: describeError(e) }, 'fleet report not sent; the next interval tries again');
    }
  }

  async #probe(): Promise<void> {
    const snapshot = this.#o.identity.current;
    if (!snapshot) return;
    const listeners = this.#o.listeners().slice(0, REPORT_LIMITS.served);
    const served = await Promise.all(
      listeners.map(async (l): Promise<ServedSvidMsg> => {
        const leaf = l.port ? await this.#o.probe(snapshot, { host: l.host, port: l.port }) : null;
        return { listener: l.name, serial: leaf?.serial ?? '', not_after_unix_ms: String(leaf?.notAfterMs ?? 0) };
      }),
    );
    this.#served = served;
    this.#checkedAtMs = this.#o.nowMs();
    this.#probedSerial = snapshot.serial;
    this.#probeClean = served.every((s) => s.serial === snapshot.serial);
  }
}

const rowBytes = (d: DenialCountMsg) => d.policy.length + d.outcome.length + d.last_caller.length + 32;

/** Drops the least recent denial rows until the (estimated) encoded size fits REPORT_BUDGET_BYTES. */
function withinBudget(msg: ProxyReportMsg): ProxyReportMsg {
  let size = msg.instance.length + 16 + msg.served.reduce((n, s) => n + s.listener.length + s.serial.length + 24, 0);
  size += msg.denials.reduce((n, d) => n + rowBytes(d), 0);
  if (size <= REPORT_BUDGET_BYTES) return msg;
  const byRecency = [...msg.denials].sort((a, b) => Number(b.last_at_unix_ms) - Number(a.last_at_unix_ms));
  while (size > REPORT_BUDGET_BYTES && byRecency.length > 0) size -= rowBytes(byRecency.pop()!);
  const kept = new Set(byRecency);
  return { ...msg, denials: msg.denials.filter((d) => kept.has(d)) };
}

/** "<host name>/<pid>": stable for the process, distinct between replicas; printable ASCII within the bound. */
export function processInstance(host: string = hostname(), pid: number = process.pid): string {
  const suffix = `/${pid}`;
  const clean = host.replace(/[^\x21-\x7e]/g, '_').replaceAll('/', '_') || 'unknown';
  return `${clean.slice(0, REPORT_LIMITS.instanceChars - suffix.length)}${suffix}`;
}

/** tessera_fleet_reports_total{result}: reports sent to the control plane, and those that failed. */
export function fleetReportCounter(registry: Registry): (r: ReportResult) => void {
  const counter = new Counter({ name: 'tessera_fleet_reports_total', help: 'Fleet reports sent to the control plane (Config/Report), by result (sent|failed)', labelNames: ['result'], registers: [registry] });
  // Both series exist from start-up, so rate() and absent() work before the first report.
  counter.inc({ result: 'sent' }, 0);
  counter.inc({ result: 'failed' }, 0);
  return (r) => counter.inc({ result: r });
}
