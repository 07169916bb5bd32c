// Which control-plane replica the proxy talks to: one object shared by every control-plane call (SignSvid, Config/
// Watch, Discovery/Watch and Register). It holds the candidates in preference order (the configured addresses, a
// DNS name expanded to its records), the current one, moves to the next on a failure (callers wait a full-jitter
// exponential backoff before retrying) and returns to the preferred one once a background probe sees it answer.
// Time, timers, randomness, DNS and the probe are injected; it never sleeps.
import { isIP } from 'node:net';
import type { Clock } from '../../../common/clock.js';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { CONTROL_PLANE_RECONNECT_MAX_MS } from '../../../common/routing/reconnect-window.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';

/** Why the current address changed. */
export type EndpointSwitchReason = 'failover' | 'failback' | 'resolved';

export interface EndpointSwitch {
  readonly from: string;
  readonly to: string;
  readonly reason: EndpointSwitchReason;
  /** What failed at `from` (failover only). */
  readonly error?: string;
}

export interface EndpointsState {
  readonly current: string;
  readonly preferred: string;
  /** Every candidate, preferred first. */
  readonly candidates: readonly string[];
  readonly failovers: number;
  readonly failbacks: number;
}

export interface ReconnectBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Streams retry after random(0, min(max, initial·2^attempt)): full jitter, so proxies do not return in step. The cap
 * is the one the control plane keeps remembered registrations for (plus a margin): raise them together.
 */
export const DEFAULT_ENDPOINT_BACKOFF: ReconnectBackoff = Object.freeze({ initialMs: 250, maxMs: CONTROL_PLANE_RECONNECT_MAX_MS });
export const DEFAULT_FAILBACK_INTERVAL_MS = 30_000;
/** A failure re-resolves the DNS names, at most this often. */
export const DEFAULT_MIN_RESOLVE_INTERVAL_MS = 5_000;
/** Records kept per DNS name (a name answering with hundreds of records must not grow the metrics or channels). */
export const MAX_RECORDS_PER_NAME = 16;
/** Candidates kept in all (each is a metric series and possibly a channel). */
export const MAX_CANDIDATES = 32;

export interface ControlPlaneEndpointsOptions {
  /** host:port, in preference order (identity.controlPlane.address or .addresses). */
  readonly addresses: readonly string[];
  readonly clock: Clock;
  /** Probes and their spacing run here (default: the real timers, unref'd). */
  readonly timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly random?: () => number;
  /** The IP addresses of a host name; absent: names are dialled as given (gRPC resolves them). */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
  /** Whether the control plane at `address` answers now; absent: no background failback. */
  readonly probe?: (address: string) => Promise<boolean>;
  readonly backoff?: ReconnectBackoff;
  /** How often the preferred address is probed while another one is current (each wait is 50–100 % of it). */
  readonly failbackIntervalMs?: number;
  readonly minResolveIntervalMs?: number;
  readonly onSwitch?: (e: EndpointSwitch) => void;
  /** The candidates changed (a DNS answer); for metrics. */
  readonly onCandidates?: (state: EndpointsState) => void;
  /** A name did not resolve (its last records, or the name itself, stay candidates). */
  readonly onResolveError?: (host: string, error: unknown) => void;
}

interface Configured {
  readonly host: string;
  readonly port: number;
  /** A host name (not an IP literal): resolved, each record a candidate. */
  readonly name: boolean;
  /** The records last resolved (IPs), in this proxy's order; empty: dial the name itself. */
  records: string[];
}

/** host:port with IPv6 in brackets, as gRPC targets and the config write it. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class ControlPlaneEndpoints {
  readonly #o: ControlPlaneEndpointsOptions;
  readonly #random: () => number;
  readonly #timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  readonly #configured: Configured[];
  /** A random rank per DNS record, drawn once: each proxy prefers its own record, and keeps that order. */
  readonly #rank = new Map<string, number>();
  readonly #listeners = new Set<(e: EndpointSwitch) => void>();
  #candidates: string[];
  #current: string;
  #failovers = 0;
  #failbacks = 0;
  #lastResolveMs: number | undefined;
  #resolving: Promise<void> | undefined;
  #running = false;
  #probeTimer: unknown;
  #probing = false;

  constructor(opts: ControlPlaneEndpointsOptions) {
    if (opts.addresses.length === 0) throw new RangeError('at least one control-plane address is needed');
    this.#o = opts;
    this.#random = opts.random ?? Math.random;
    this.#timers = opts.timers ?? realTimers;
    this.#configured = opts.addresses.map((a) => {
      const p = parseAddress(a);
      if (!p) throw new RangeError(`not a host:port address: ${a}`);
      // localhost stays a name gRPC dials itself: its ::1 and 127.0.0.1 are one host, not two replicas.
      return { host: p.host, port: p.port, name: isIP(p.host) === 0 && p.host !== 'localhost', records: [] };
    });
    this.#candidates = this.#expand();
    this.#current = this.#candidates[0]!;
  }

  /** The address to dial now. */
  current(): string {
    return this.#current;
  }

  /** The address the proxy returns to when it answers: the first candidate. */
  preferred(): string {
    return this.#candidates[0]!;
  }

  state(): EndpointsState {
    return { current: this.#current, preferred: this.preferred(), candidates: [...this.#candidates], failovers: this.#failovers, failbacks: this.#failbacks };
  }

  /** The candidates to try for one call, current first, then the ones after it in order (wrapping). */
  order(): string[] {
    const i = Math.max(0, this.#candidates.indexOf(this.#current));
    return [...this.#candidates.slice(i), ...this.#candidates.slice(0, i)];
  }

  /** Runs `fn` on every change of the current address; returns the unsubscribe function. */
  subscribe(fn: (e: EndpointSwitch) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * `address` failed (unreachable, deadline, stream ended by a replica going away). When it is the current one the
   * next candidate becomes current; a report about an address already left is only news for DNS (re-resolve).
   */
  failed(address: string, error?: string): void {
    if (this.#configured.some((c) => c.name)) void this.#maybeResolve();
    if (address !== this.#current || this.#candidates.length < 2) return;
    const i = this.#candidates.indexOf(address);
    const next = this.#candidates[(i + 1) % this.#candidates.length]!;
    this.#failovers++;
    this.#switch({ from: address, to: next, reason: 'failover', ...(error ? { error } : {}) });
  }

  /** How long a stream waits before its `attempt`-th reconnect (0-based): full jitter. */
  retryDelayMs(attempt: number): number {
    const b = this.#o.backoff ?? DEFAULT_ENDPOINT_BACKOFF;
    const cap = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
    return Math.floor(this.#random() * cap);
  }

  /** Resolves the DNS names now (at start, and after failures); a name that does not resolve keeps its records. */
  refresh(): Promise<void> {
    if (this.#resolving) return this.#resolving;
    const resolve = this.#o.resolve;
    if (!resolve || !this.#configured.some((c) => c.name)) return Promise.resolve();
    this.#lastResolveMs = this.#o.clock.nowMs();
    this.#resolving = (async () => {
      for (const c of this.#configured) {
        if (!c.name) continue;
        try {
          const found = [...new Set(await resolve(c.host))].filter((ip) => isIP(ip) !== 0);
          if (found.length > 0) c.records = this.#ordered(found).slice(0, MAX_RECORDS_PER_NAME);
        } catch (e) {
          // Keep what was known: a DNS hiccup must not take a working address away.
          this.#o.onResolveError?.(c.host, e);
        }
      }
      this.#adopt(this.#expand());
    })().finally(() => {
      this.#resolving = undefined;
    });
    return this.#resolving;
  }

  /** Starts the background failback (probes run only while a non-preferred address is current). */
  start(): void {
    this.#running = true;
    this.#scheduleProbe();
  }

  stop(): void {
    this.#running = false;
    if (this.#probeTimer !== undefined) this.#timers.clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
  }

  #maybeResolve(): Promise<void> {
    const min = this.#o.minResolveIntervalMs ?? DEFAULT_MIN_RESOLVE_INTERVAL_MS;
    if (this.#lastResolveMs !== undefined && this.#o.clock.nowMs() - this.#lastResolveMs < min) return Promise.resolve();
    return this.refresh();
  }

  /** Records in this proxy's order: by a rank drawn the first time each is seen. */
  #ordered(records: readonly string[]): string[] {
    for (const r of records) if (!this.#rank.has(r)) this.#rank.set(r, this.#random());
    return [...records].sort((a, b) => this.#rank.get(a)! - this.#rank.get(b)! || (a < b ? -1 : 1));
  }

  #expand(): string[] {
    const out: string[] = [];
    for (const c of this.#configured) {
      const hosts = c.records.length > 0 ? c.records : [c.host];
      for (const h of hosts) {
        const a = joinHostPort(h, c.port);
        if (!out.includes(a)) out.push(a);
      }
    }
    return out.slice(0, MAX_CANDIDATES);
  }

  /** New candidates: the current address stays if it is still one, else the preferred one takes over. */
  #adopt(next: string[]): void {
    const changed = next.length !== this.#candidates.length || next.some((a, i) => a !== this.#candidates[i]);
    if (!changed) return;
    this.#candidates = next;
    if (!next.includes(this.#current)) this.#switch({ from: this.#current, to: next[0]!, reason: 'resolved' });
    else this.#scheduleProbe();
    this.#o.onCandidates?.(this.state());
  }

  #switch(e: EndpointSwitch): void {
    if (e.from === e.to) return;
    this.#current = e.to;
    this.#o.onSwitch?.(e);
    for (const l of [...this.#listeners]) l(e);
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (!this.#running || !this.#o.probe || this.#probeTimer !== undefined || this.#probing) return;
    if (this.#current === this.preferred()) return;
    const interval = this.#o.failbackIntervalMs ?? DEFAULT_FAILBACK_INTERVAL_MS;
    const wait = Math.round(interval * (0.5 + 0.5 * this.#random()));
    this.#probeTimer = this.#timers.setTimeout(() => {
      this.#probeTimer = undefined;
      void this.#probePreferred();
    }, wait);
  }

  async #probePreferred(): Promise<void> {
    const target = this.preferred();
    if (!this.#running || this.#current === target) return;
    this.#probing = true;
    let answered = false;
    try {
      answered = await this.#o.probe!(target);
    } catch {
      answered = false;
    } finally {
      this.#probing = false;
    }
    if (this.#running && answered && this.#current !== target && this.preferred() === target) {
      this.#failbacks++;
      this.#switch({ from: this.#current, to: target, reason: 'failback' });
    } else this.#scheduleProbe();
  }
}
