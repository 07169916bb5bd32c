// The dashboard's proxy panels, from the proxies' own reports: the serial each listener really serves, compared
// with the newest SVID the inventory holds for that chain (a proxy still serving a renewed SVID is highlighted).
// Rows kept when the panel is cut are taken in turn from each SPIFFE ID, so one workload's many instances cannot
// push the others out. The denials panel is denial-panel.ts.
import { canonicalSerial } from '../../../../common/pki/serial.js';
import type { ProxyReport } from '../../store/store-contract.js';
import type { SvidChains } from './workload-panel.js';

/**
 * current: the newest SVID of its chain; superseded: a newer one was issued before the proxy checked (it did not
 * switch); renewed-since-check: a newer one came after the check (the next report tells); expired; unknown: not in
 * this inventory (another control plane's, or file identity); check-failed: the proxy's own handshake to the
 * listener failed (it reports an empty serial); unchecked: the inventory could not be read.
 */
export type ServedStatus = 'current' | 'superseded' | 'renewed-since-check' | 'expired' | 'unknown' | 'check-failed' | 'unchecked';

/** Statuses the page highlights as a mismatch with the latest issued SVID. */
export const MISMATCH: ReadonlySet<ServedStatus> = new Set(['superseded', 'expired', 'unknown', 'check-failed']);

/**
 * Clocks of proxies and control plane differ by a little: a renewal this close to the proxy's check is not yet
 * counted against it.
 */
export const SERVE_GRACE_MS = 5_000;

export interface ServedRow {
  /** The proxy's listeners serving this serial. */
  readonly listeners: readonly string[];
  readonly serial: string;
  readonly notAfterMs: number;
  readonly status: ServedStatus;
  /** The newest SVID of the chain, when it is not the served one. */
  readonly latestSerial: string | null;
  readonly latestIssuedAtMs: number | null;
}

export interface ProxyRow {
  readonly spiffeId: string;
  readonly instance: string;
  /** The proxy's clock. */
  readonly checkedAtMs: number;
  /** The receiving control plane's clock, and which replica. */
  readonly receivedAtMs: number;
  readonly replica: string;
  /** No report for longer than the silence threshold. */
  readonly silent: boolean;
  readonly mismatch: boolean;
  readonly served: readonly ServedRow[];
}

/** Code-point order: stable across locales, and cheap for thousands of rows. */
export const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function servedStatus(chains: SvidChains | undefined, serialText: string, notAfterMs: number, checkedAtMs: number, nowMs: number): Omit<ServedRow, 'listeners'> {
  const serial = canonicalSerial(serialText) ?? serialText;
  const base = { serial, notAfterMs, latestSerial: null, latestIssuedAtMs: null };
  if (serialText === '') return { ...base, status: 'check-failed' };
  if (!chains) return { ...base, status: 'unchecked' };
  if (!chains.bySerial.has(serial)) return { ...base, status: notAfterMs <= nowMs ? 'expired' : 'unknown' };
  if (notAfterMs <= nowMs) return { ...base, status: 'expired' };
  const head = chains.headOf(serial);
  if (head === serial) return { ...base, status: 'current' };
  const latest = chains.bySerial.get(head)!;
  const next = chains.childOf(serial)!;
  return {
    ...base,
    status: next.issuedAtMs + SERVE_GRACE_MS <= checkedAtMs ? 'superseded' : 'renewed-since-check',
    latestSerial: head,
    latestIssuedAtMs: latest.issuedAtMs,
  };
}

/** The newest report of each proxy (SPIFFE ID + instance). */
export function latestReports(reports: readonly ProxyReport[]): ProxyReport[] {
  const latest = new Map<string, ProxyReport>();
  for (const r of reports) {
    const key = `${r.spiffeId}\n${r.instance}`;
    const seen = latest.get(key);
    if (!seen || seen.receivedAtMs < r.receivedAtMs) latest.set(key, r);
  }
  return [...latest.values()];
}

/** One row per report (give the latest of each proxy), listeners serving one serial grouped; mismatches first. */
export function proxyRows(reports: readonly ProxyReport[], chains: SvidChains | undefined, nowMs: number, silentAfterMs: number): ProxyRow[] {
  const rows = reports.map((r): ProxyRow => {
    const bySerial = new Map<string, { listeners: string[]; notAfterMs: number }>();
    for (const s of r.served) {
      const g = bySerial.get(s.serial) ?? { listeners: [], notAfterMs: s.notAfterMs };
      g.listeners.push(s.listener);
      bySerial.set(s.serial, g);
    }
    const served = [...bySerial].map(([serial, g]): ServedRow => ({ listeners: g.listeners.sort(), ...servedStatus(chains, serial, g.notAfterMs, r.checkedAtMs, nowMs) }));
    return {
      spiffeId: r.spiffeId,
      instance: r.instance,
      checkedAtMs: r.checkedAtMs,
      receivedAtMs: r.receivedAtMs,
      replica: r.replica,
      silent: r.receivedAtMs + silentAfterMs < nowMs,
      mismatch: served.some((s) => MISMATCH.has(s.status)),
      served,
    };
  });
  return rows.sort((a, b) => Number(b.mismatch) - Number(a.mismatch) || compare(a.spiffeId, b.spiffeId) || compare(a.instance, b.instance));
}

/**
 * At most `max` of `rows` (in their order): each SPIFFE ID's first row, then each one's second, and so on, so the
 * rows kept are spread over the IDs; the kept rows stay in their order.
 */
export function fairRows(rows: readonly ProxyRow[], max: number): ProxyRow[] {
  if (rows.length <= max) return [...rows];
  const seen = new Map<string, number>();
  const ranked = rows.map((row, i) => {
    const rank = seen.get(row.spiffeId) ?? 0;
    seen.set(row.spiffeId, rank + 1);
    return { row, i, rank };
  });
  const kept = ranked.sort((a, b) => a.rank - b.rank || a.i - b.i).slice(0, max);
  return kept.sort((a, b) => a.i - b.i).map((k) => k.row);
}
