// The fleet dashboard's data (GET /api/fleet): one read-only view of the fleet — workloads and their SVIDs, what
// each proxy really serves, the CA and its rotation step, denials per policy, break-glass grants, bans, recent
// audit events and the expiry timeline — built from injected sources. Each source is read on its own: one that
// fails marks its panels unavailable (with a code) and the others still show. Times are ms since the epoch. Every
// panel is cut, and the build reads a bounded number of reports and bytes (audit 16b F1: it parsed every
// listed report in full, tens of MB, blocking the control plane for seconds). The live SVIDs are read and folded in
// slices that give the event loop a turn between them (live-svid-scan.ts).
import type { Clock } from '../../../../common/clock.js';
import { isTesseraError } from '../../../../common/errors.js';
import type { AuditLog, GrantStore, InventoryStore, ReportStore, RevocationStore } from '../../store/store-contract.js';
import { type CaPanel, type CaView, caPanel } from './ca-panel.js';
import { type DenialRow, denialRows } from './denial-panel.js';
import { fairRows, latestReports, type ProxyRow, proxyRows } from './proxy-panel.js';
import { scanLiveSvids } from './live-svid-scan.js';
import type { WorkloadRow } from './workload-panel.js';

export interface FleetSources {
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly ca: () => CaView;
  readonly inventory: Pick<InventoryStore, 'livePage'>;
  readonly reports: Pick<ReportStore, 'list'>;
  readonly grants: Pick<GrantStore, 'active'>;
  readonly audit: Pick<AuditLog, 'recent'>;
  readonly revocations: Pick<RevocationStore, 'live'>;
  /** The policies this control plane distributes: denials under any other name are folded per reporting ID. */
  readonly policies: () => readonly { readonly name: string }[];
  /** A source failed: its error and the panels it leaves unavailable (the page says "see the control plane log"). */
  readonly onSourceError?: (e: unknown, panels: readonly PanelName[]) => void;
  /** The live SVIDs were read: how many, in how many turns of the event loop (the dashboard's metrics). */
  readonly onScanned?: (scan: { readonly rows: number; readonly slices: number }) => void;
  /** Gives the event loop a turn between slices (default setImmediate; tests count the calls). */
  readonly yieldTurn?: () => Promise<void>;
}

export interface FleetLimits {
  /** Live SVIDs read from the inventory at most. */
  readonly maxSvids: number;
  /** Live SVIDs read, or chain heads folded, per turn of the event loop. */
  readonly sliceRows: number;
  readonly maxWorkloadRows: number;
  /** Proxy rows (taken in turn from each SPIFFE ID, each ID's mismatches first). */
  readonly maxProxyRows: number;
  /** Denial rows (known policies kept first). */
  readonly maxDenialRows: number;
  /** Reports read at most (fair per SPIFFE ID), and bytes of stored report text read at most. */
  readonly maxReports: number;
  readonly maxReportBytes: number;
  /** Reports older than this are not read (a proxy gone for longer is gone from the page). */
  readonly reportWindowMs: number;
  /** A proxy whose last report is older than this is marked silent. */
  readonly silentAfterMs: number;
  readonly eventsPerKind: number;
  readonly maxEvents: number;
  /** SVID rows on the timeline (the CA and grants always show). */
  readonly timelineSvids: number;
}

export const DEFAULT_FLEET_LIMITS: FleetLimits = { maxSvids: 10_000, sliceRows: 1_000, maxWorkloadRows: 500, maxProxyRows: 500, maxDenialRows: 500, maxReports: 1_000, maxReportBytes: 2_000_000, reportWindowMs: 15 * 60_000, silentAfterMs: 90_000, eventsPerKind: 25, maxEvents: 50, timelineSvids: 40 };

/** Audit events the page lists: refused SVIDs, CA changes, break-glass grants, bans. */
export const EVENT_PREFIXES = ['svid.refused', 'ca.', 'break_glass.', 'revocation.'] as const;

export interface GrantRow {
  readonly id: string;
  readonly to: string;
  readonly from: readonly string[];
  readonly reason: string;
  readonly createdBy: string | null;
  readonly createdAtMs: number | null;
  readonly expiresAtMs: number;
}

export interface BanRow {
  readonly kind: 'spiffe_id' | 'serial';
  readonly value: string;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAtMs: number;
  readonly notAfterMs: number | null;
}

export interface EventRow {
  readonly atMs: number;
  readonly event: string;
  readonly result: string | null;
  readonly code: string | null;
  /** The SPIFFE ID, authority, grant or banned value the event is about. */
  readonly subject: string | null;
  readonly caller: string | null;
  /** The event's other fields, "key: value; …", shortened. */
  readonly detail: string;
}

export interface TimelineItem {
  readonly kind: 'root' | 'intermediate' | 'svid' | 'grant';
  readonly label: string;
  /** When it became valid, when known. */
  readonly startMs: number | null;
  readonly endMs: number;
  /** A mismatch, a prepared or retired authority: drawn apart. */
  readonly note: string | null;
}

/** Panels whose rows are bounded. */
export type Truncated = 'svids' | 'workloads' | 'proxies' | 'denials' | 'timeline';

export type PanelName = 'ca' | 'workloads' | 'proxies' | 'denials' | 'grants' | 'bans' | 'events';

export interface FleetView {
  readonly version: 1;
  readonly trustDomain: string;
  readonly generatedAtMs: number;
  readonly ca: CaPanel | null;
  readonly workloads: readonly WorkloadRow[];
  readonly proxies: readonly ProxyRow[];
  readonly denials: readonly DenialRow[];
  readonly grants: readonly GrantRow[];
  readonly bans: readonly BanRow[];
  readonly events: readonly EventRow[];
  /** Roots, intermediates, grants, then SVIDs soonest first. */
  readonly timeline: readonly TimelineItem[];
  /** Rows left out to keep the page bounded, per panel (absent: none). */
  readonly truncated: Readonly<Partial<Record<Truncated, number>>>;
  readonly unavailable: readonly { readonly panel: PanelName; readonly reason: string }[];
}

/** What a failed source shows: a coded error's code and message; anything else stays in the control plane. */
function reasonOf(e: unknown): string {
  return isTesseraError(e) ? `${e.code}: ${e.message}` : 'the source could not be read (see the control plane log)';
}

export async function buildFleetView(s: FleetSources, limits: FleetLimits = DEFAULT_FLEET_LIMITS): Promise<FleetView> {
  const now = s.clock.nowMs();
  const settle = async <T>(panels: readonly PanelName[], p: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; reason: string }> => {
    try {
      return { ok: true, value: await p() };
    } catch (e) {
      s.onSourceError?.(e, panels);
      return { ok: false, reason: reasonOf(e) };
    }
  };
  const [live, reports, grants, bans, events, ca] = await Promise.all([
    settle(['workloads'], () => scanLiveSvids(s.inventory, now, limits, s.yieldTurn)),
    settle(['proxies', 'denials'], () => s.reports.list(now - limits.reportWindowMs, limits.maxReports, limits.maxReportBytes)),
    settle(['grants'], () => s.grants.active(now)),
    settle(['bans'], () => s.revocations.live(now)),
    settle(['events'], () => recentEvents(s.audit, limits)),
    settle(['ca'], () => s.ca()),
  ]);
  const unavailable: { panel: PanelName; reason: string }[] = [];
  const missing = (r: { ok: false; reason: string }, ...panels: PanelName[]) => {
    for (const panel of panels) unavailable.push({ panel, reason: r.reason });
  };
  const truncated: Partial<Record<Truncated, number>> = {};

  if (!live.ok) missing(live, 'workloads');
  const scan = live.ok ? live.value : undefined;
  const chains = scan?.chains;
  if (scan) {
    s.onScanned?.({ rows: scan.read, slices: scan.slices });
    if (scan.read >= limits.maxSvids) truncated.svids = scan.read;
    if (scan.heads > limits.maxWorkloadRows) truncated.workloads = scan.heads - limits.maxWorkloadRows;
    if (scan.heads > limits.timelineSvids) truncated.timeline = scan.heads - limits.timelineSvids;
  }

  const latest = reports.ok ? latestReports(reports.value) : [];
  if (!reports.ok) missing(reports, 'proxies', 'denials');
  if (!grants.ok) missing(grants, 'grants');
  if (!bans.ok) missing(bans, 'bans');
  if (!events.ok) missing(events, 'events');
  if (!ca.ok) missing(ca, 'ca');
  const caView = ca.ok ? caPanel(ca.value, scan?.byAuthority) : null;
  const proxies = proxyRows(latest, chains, now, limits.silentAfterMs);
  if (proxies.length > limits.maxProxyRows) truncated.proxies = proxies.length - limits.maxProxyRows;
  const denials = denialRows(latest, new Set(s.policies().map((p) => p.name)), limits.maxDenialRows);
  if (denials.left > 0) truncated.denials = denials.left;
  const grantRows = grants.ok ? grants.value.map((g): GrantRow => ({ id: g.id, to: g.to, from: [...g.from], reason: g.reason, createdBy: g.createdBy ?? null, createdAtMs: g.createdAtMs ?? null, expiresAtMs: g.expiresAtMs })).sort((a, b) => a.expiresAtMs - b.expiresAtMs) : [];
  const timeline = timelineItems(s.trustDomain, caView, grantRows, scan?.soonest ?? [], proxies);
  return {
    version: 1,
    trustDomain: s.trustDomain,
    generatedAtMs: now,
    ca: caView,
    workloads: scan?.workloads ?? [],
    proxies: fairRows(proxies, limits.maxProxyRows),
    denials: denials.rows,
    grants: grantRows,
    bans: bans.ok ? bans.value.map((b): BanRow => ({ kind: b.kind, value: b.value, reason: b.reason, createdBy: b.createdBy, createdAtMs: b.createdAtMs, notAfterMs: b.notAfterMs })) : [],
    events: events.ok ? events.value : [],
    timeline: dropSvidItems(timeline, limits.timelineSvids),
    truncated,
    unavailable,
  };
}

async function recentEvents(audit: Pick<AuditLog, 'recent'>, limits: FleetLimits): Promise<EventRow[]> {
  const lists = await Promise.all(EVENT_PREFIXES.map(async (prefix) => (await audit.recent(prefix, limits.eventsPerKind)).filter((e) => String(e['event'] ?? '').startsWith(prefix))));
  return lists
    .flat()
    .map(eventRow)
    .filter((e): e is EventRow => e !== undefined)
    .sort((a, b) => b.atMs - a.atMs)
    .slice(0, limits.maxEvents);
}

const SHOWN = new Set(['ts', 'event', 'result', 'code', 'caller', 'notAfterMs']);
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

export function eventRow(e: Record<string, unknown>): EventRow | undefined {
  const atMs = Date.parse(String(e['ts'] ?? ''));
  if (!Number.isFinite(atMs)) return undefined;
  const subjectKey = ['spiffeId', 'authority', 'grant', 'value'].find((k) => str(e[k]) !== null);
  const detail = Object.entries(e)
    .filter(([k, v]) => !SHOWN.has(k) && k !== subjectKey && v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('; ');
  return {
    atMs,
    event: String(e['event']),
    result: str(e['result']),
    code: str(e['code']),
    subject: subjectKey ? str(e[subjectKey]) : null,
    caller: str(e['caller']),
    detail: detail.length > 240 ? `${detail.slice(0, 239)}…` : detail,
  };
}

/** `soonest`: the SVIDs the timeline shows, soonest expiry first (the scan kept only those). */
function timelineItems(td: string, ca: CaPanel | null, grants: readonly GrantRow[], soonest: readonly WorkloadRow[], proxies: readonly ProxyRow[]): TimelineItem[] {
  // The trust domain is the page's title: the path alone names the workload. The page prefixes the kind.
  const local = (id: string) => (id.startsWith(`spiffe://${td}/`) ? id.slice(`spiffe://${td}`.length) : id);
  const items: TimelineItem[] = [];
  for (const a of ca?.authorities ?? []) items.push({ kind: 'root', label: a.id, startMs: a.createdAtMs, endMs: a.rootNotAfterMs, note: a.state });
  for (const a of ca?.authorities ?? []) {
    for (const i of a.intermediates) items.push({ kind: 'intermediate', label: `${i.serial.slice(0, 8)} of ${a.id}`, startMs: null, endMs: i.notAfterMs, note: i.signing ? 'signing' : a.state });
  }
  for (const g of grants) items.push({ kind: 'grant', label: `${g.id} to ${local(g.to)}`, startMs: g.createdAtMs, endMs: g.expiresAtMs, note: null });
  const unserved = new Set(proxies.flatMap((p) => p.served.filter((s) => s.latestSerial !== null).map((s) => s.latestSerial)));
  const svids = soonest.map((w): TimelineItem => ({ kind: 'svid', label: `${local(w.spiffeId)} ${w.serial.slice(0, 8)}`, startMs: w.notBeforeMs, endMs: w.notAfterMs, note: unserved.has(w.serial) ? 'not served yet' : null }));
  return [...items, ...svids];
}

function dropSvidItems(items: readonly TimelineItem[], keep: number): TimelineItem[] {
  let svids = 0;
  return items.filter((t) => t.kind !== 'svid' || ++svids <= keep);
}

export type { CaPanel, DenialRow, ProxyRow, WorkloadRow };
