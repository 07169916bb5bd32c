// The fleet view's read of the live SVIDs, in slices: the inventory a page at a time (keyset paging by expiry and
// serial, at most `sliceRows` rows a page), then the chain heads `sliceRows` at a time, the event loop getting a
// turn (setImmediate: pending I/O first) between slices. Before, the whole read and fold of up to 10,000 rows ran in
// one turn every 2 s while a page watched, and /ready, /healthz and gRPC waited 0.2-0.8 s behind it (audit 54b F5).
// Only what the page shows is kept in order (the first workload rows, the soonest timeline SVIDs); the counts it
// shows (heads, live SVIDs per authority) cover every row read.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { InventoryStore, IssuedSvidRow, LiveCursor } from '../../store/store-contract.js';
import type { LiveCount } from './ca-panel.js';
import { SvidChains, type WorkloadRow, workloadOrder } from './workload-panel.js';

export interface ScanLimits {
  /** Live SVIDs read at most. */
  readonly maxSvids: number;
  /** Rows read, or chain heads folded, per turn of the event loop. */
  readonly sliceRows: number;
  readonly maxWorkloadRows: number;
  readonly timelineSvids: number;
}

export interface LiveScan {
  readonly chains: SvidChains;
  /** Live SVIDs read (maxSvids: there may be more). */
  readonly read: number;
  readonly byAuthority: ReadonlyMap<string, LiveCount>;
  /** Chain heads among them: the workload rows there are. */
  readonly heads: number;
  /** The first maxWorkloadRows heads in the panel's order. */
  readonly workloads: readonly WorkloadRow[];
  /** The timelineSvids heads that expire first, soonest first. */
  readonly soonest: readonly WorkloadRow[];
  /** Turns of the event loop the scan took (pages read plus head slices). */
  readonly slices: number;
}

/** The timeline's order: soonest expiry, then the panel's order. */
const expiryOrder = (a: WorkloadRow, b: WorkloadRow) => a.notAfterMs - b.notAfterMs || workloadOrder(a, b);

/** `best` (at most k, in order) with `more` merged in, cut to k: the sort is of k + a slice, never of every row. */
function keepFirst(best: WorkloadRow[], more: readonly WorkloadRow[], k: number, order: (a: WorkloadRow, b: WorkloadRow) => number): WorkloadRow[] {
  if (more.length === 0) return best;
  return [...best, ...more].sort(order).slice(0, k);
}

/** `yieldTurn` gives the event loop a turn between slices (tests count the calls). */
export async function scanLiveSvids(inventory: Pick<InventoryStore, 'livePage'>, nowMs: number, limits: ScanLimits, yieldTurn: () => Promise<void> = () => nextTurn()): Promise<LiveScan> {
  const pageRows = Math.max(1, limits.sliceRows);
  const chains = new SvidChains();
  const byAuthority = new Map<string, LiveCount>();
  let read = 0;
  let slices = 0;
  let after: LiveCursor | undefined;
  while (read < limits.maxSvids) {
    if (slices > 0) await yieldTurn();
    const want = Math.min(pageRows, limits.maxSvids - read);
    const page = await inventory.livePage(nowMs, after, want);
    slices++;
    chains.add(page);
    countByAuthority(byAuthority, page);
    read += page.length;
    const last = page.at(-1);
    if (!last || page.length < want) break;
    after = { notAfterMs: last.notAfterMs, serial: last.serial };
  }

  let heads = 0;
  let workloads: WorkloadRow[] = [];
  let soonest: WorkloadRow[] = [];
  let batch: WorkloadRow[] = [];
  let seen = 0;
  const fold = () => {
    workloads = keepFirst(workloads, batch, limits.maxWorkloadRows, workloadOrder);
    soonest = keepFirst(soonest, batch, limits.timelineSvids, expiryOrder);
    batch = [];
  };
  for (const [serial, r] of chains.bySerial) {
    if (seen > 0 && seen % pageRows === 0) {
      fold();
      await yieldTurn();
      slices++;
    }
    seen++;
    const head = chains.headRow(serial, r);
    if (!head) continue;
    heads++;
    batch.push(head);
  }
  fold();
  return { chains, read, byAuthority, heads, workloads, soonest, slices };
}

/** As the store's liveByAuthority counts: the control plane's own SVIDs keep no authority in the bundle. */
function countByAuthority(out: Map<string, LiveCount>, rows: readonly IssuedSvidRow[]): void {
  for (const r of rows) {
    if (r.kind === 'self') continue;
    const seen = out.get(r.authorityId);
    out.set(r.authorityId, { count: (seen?.count ?? 0) + 1, latestNotAfterMs: Math.max(seen?.latestNotAfterMs ?? 0, r.notAfterMs) });
  }
}
