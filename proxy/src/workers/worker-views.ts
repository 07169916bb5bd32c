// The primary's admin views over its workers' stats: listeners with their open connections summed, each
// balanced service's endpoints as every worker sees them, the denials merged for the fleet report, and the
// counters by worker slot (restarts, failed restart attempts, workers killed for not answering) and by snapshot part
// (refusals).
import { Counter, type Registry } from 'prom-client';
import type { DenialRow } from '../authz/denial-tally.js';
import { SNAPSHOT_PARTS, type SnapshotPart, type WorkerStats } from './worker-messages.js';

export type SlotStats = { readonly slot: number; readonly stats: WorkerStats | undefined };

/** /config's listeners: one row per listener, `open` summed over the workers that answered. */
export function mergeListeners(all: readonly SlotStats[]): { name: string; port: number; open: number }[] {
  const rows = new Map<string, { name: string; port: number; open: number }>();
  for (const { stats } of all) {
    for (const l of stats?.listeners ?? []) {
      const row = rows.get(l.name) ?? { name: l.name, port: l.port, open: 0 };
      row.open += l.open;
      rows.set(l.name, row);
    }
  }
  return [...rows.values()];
}

/** /endpoints: each worker balances on its own, so each view is listed with its worker slot. */
export function mergeEndpoints(all: readonly SlotStats[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const { slot, stats } of all) {
    for (const [service, views] of Object.entries(stats?.endpoints ?? {})) out[service] = [...(out[service] ?? []), ...views.map((v) => ({ ...v, worker: slot }))];
  }
  return out;
}

/** One row per (policy, outcome): counts summed, the latest denial's time and caller kept. */
export function mergeDenials(all: readonly SlotStats[]): DenialRow[] {
  const rows = new Map<string, DenialRow>();
  for (const { stats } of all) {
    for (const r of stats?.denials ?? []) {
      const key = `${r.outcome}\u0000${r.policy}`;
      const had = rows.get(key);
      rows.set(key, had ? { ...(r.lastAtMs >= had.lastAtMs ? r : had), count: had.count + r.count } : r);
    }
  }
  return [...rows.values()];
}

/** A counter by worker slot, every slot shown from 0: tessera_worker_restarts_total, …_restart_failures_total, …_hangs_total. */
export function workerSlotCounter(registry: Registry, workers: number, name: string, help: string): (slot: number) => void {
  const counter = new Counter({ name, help, labelNames: ['worker'], registers: [registry] });
  for (let i = 0; i < workers; i++) counter.inc({ worker: String(i) }, 0);
  return (slot) => counter.inc({ worker: String(slot) });
}

/** tessera_worker_snapshot_refusals_total{part}, every part shown from 0: a worker kept an older snapshot part. */
export function snapshotRefusalCounter(registry: Registry): (part: SnapshotPart) => void {
  const counter = new Counter({ name: 'tessera_worker_snapshot_refusals_total', help: 'Snapshot parts from the primary that a listener worker refused (it keeps the older one), by part.', labelNames: ['part'], registers: [registry] });
  for (const part of SNAPSHOT_PARTS) counter.inc({ part }, 0);
  return (part) => counter.inc({ part });
}
