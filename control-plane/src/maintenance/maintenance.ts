// The control plane's upkeep as scheduled tasks: every tick, expired Watch callers and the gauges that are
// sampled, break-glass expiry and self-SVID renewal (each its own task: they wait for the store, and a slow store
// must not hold up the Watch sweep); every 5 s CA maintenance (rotation, pruning); every minute the rate
// limiter's idle buckets; every hour join tokens past their keep time, silent proxies' reports, old audit rows and
// the inventory's rows expired more than `inventory.keep` ago (every `inventory.keep`, when shorter).

import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ControlPlaneMetrics } from '../admin/metrics.js';
import type { InventoryStore } from '../store/store-contract.js';
import { MaintenanceScheduler, type MaintenanceTask } from './maintenance-scheduler.js';

export const CA_MAINTENANCE_EVERY_MS = 5_000;
export const LIMITER_SWEEP_EVERY_MS = 60_000;
export const TOKEN_PRUNE_EVERY_MS = 3_600_000;
/** A join token is kept (for `token list` and the audit trail) this long after it expired. */
export const TOKEN_KEEP_MS = 24 * 3_600_000;
/** A proxy silent for this long is gone from the fleet view (it reports every 30 s while it runs). */
export const REPORT_KEEP_MS = 24 * 3_600_000;
/** Audit rows deleted per statement: a first prune of years of rows never holds the database (or SQLite's event loop) long. */
export const AUDIT_PRUNE_BATCH = 5_000;
/** Batches per hourly run at most (a million rows an hour); the rest waits for the next hour. */
export const AUDIT_PRUNE_MAX_BATCHES = 200;

export interface MaintenanceParts {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly tickMs: number;
  readonly hub: { tick(): void };
  readonly breakGlass: { expire(): Promise<unknown>; active(): readonly unknown[] };
  readonly server: { readonly connections: number };
  readonly metrics: Pick<ControlPlaneMetrics, 'breakGlassActive' | 'grpcConnections'>;
  /** Reissues the control plane's own SVID when it is due. */
  readonly renewSelf: () => Promise<unknown>;
  readonly limiter: { sweep(): void };
  readonly tokens: { prune(nowMs: number, keepMs: number): Promise<unknown> };
  /** Proxy reports (the dashboard's "what each proxy serves"): forgotten a day after the last one. */
  readonly reports?: { prune(beforeMs: number): Promise<unknown> };
  /** The audit trail's shared rows, kept `auditKeepMs` (absent: never pruned). */
  readonly audit?: { prune(beforeMs: number, maxRows: number): Promise<number> };
  readonly auditKeepMs?: number;
  /** Told how many audit rows one run deleted, when any. */
  readonly onAuditPruned?: (rows: number) => void;
  /** The SVID inventory: rows expired more than `inventoryKeepMs` ago go (absent: never pruned). */
  readonly inventory?: Pick<InventoryStore, 'prune'>;
  readonly inventoryKeepMs?: number;
  /** Told how many inventory rows one run deleted, when any. */
  readonly onInventoryPruned?: (rows: number) => void;
  /** Replicas on one database: whether this one does the sweeps that must run once (absent: always). */
  readonly leads?: () => boolean;
  readonly ca: { maintain(): Promise<unknown> };
  readonly onFailure: (message: string, error: unknown) => void;
}

export function controlPlaneMaintenance(p: MaintenanceParts): MaintenanceScheduler {
  const tick = 'maintenance tick failed';
  const leads = () => p.leads?.() ?? true;
  const tasks: MaintenanceTask[] = [
    {
      name: 'tick',
      everyMs: p.tickMs,
      failure: tick,
      run: () => {
        p.hub.tick();
        p.metrics.breakGlassActive.set(p.breakGlass.active().length);
        p.metrics.grpcConnections.set(p.server.connections);
      },
    },
    { name: 'break-glass-expiry', everyMs: p.tickMs, failure: tick, run: () => p.breakGlass.expire() },
    { name: 'self-renewal', everyMs: p.tickMs, failure: tick, run: () => p.renewSelf() },
    { name: 'limiter-sweep', everyMs: LIMITER_SWEEP_EVERY_MS, failure: tick, run: () => p.limiter.sweep() },
    { name: 'token-prune', everyMs: TOKEN_PRUNE_EVERY_MS, failure: tick, run: () => leads() && p.tokens.prune(p.clock.nowMs(), TOKEN_KEEP_MS) },
    { name: 'report-prune', everyMs: TOKEN_PRUNE_EVERY_MS, failure: tick, run: () => leads() && p.reports?.prune(p.clock.nowMs() - REPORT_KEEP_MS) },
    { name: 'audit-prune', everyMs: TOKEN_PRUNE_EVERY_MS, failure: tick, run: () => leads() && pruneInBatches(p.audit, p.auditKeepMs, p, p.onAuditPruned) },
    // A keep shorter than the hour is kept to (a test's seconds) rather than overshot by up to an hour.
    { name: 'inventory-prune', everyMs: Math.min(TOKEN_PRUNE_EVERY_MS, p.inventoryKeepMs ?? TOKEN_PRUNE_EVERY_MS), failure: tick, run: () => leads() && pruneInBatches(p.inventory, p.inventoryKeepMs, p, p.onInventoryPruned) },
    { name: 'ca-maintenance', everyMs: CA_MAINTENANCE_EVERY_MS, failure: 'CA maintenance failed', run: () => p.ca.maintain() },
  ];
  return new MaintenanceScheduler({ clock: p.clock, timers: p.timers, checkEveryMs: p.tickMs, tasks, onFailure: (t, e) => p.onFailure(t.failure, e) });
}

/**
 * Deletes rows recorded (or expired) more than `keepMs` ago, in batches, each its own statement, until none is left
 * or the cap: a first prune of years of rows never holds the database (or SQLite's event loop) long. Between two
 * batches the event loop gets a turn (SQLite's statements are synchronous: back to back, the whole run held every
 * call and connection until it ended). The audit trail and the SVID inventory are pruned this way.
 */
async function pruneInBatches(table: { prune(beforeMs: number, maxRows: number): Promise<number> } | undefined, keepMs: number | undefined, p: MaintenanceParts, onPruned?: (rows: number) => void): Promise<void> {
  if (!table || keepMs === undefined) return;
  const before = p.clock.nowMs() - keepMs;
  let total = 0;
  for (let i = 0; i < AUDIT_PRUNE_MAX_BATCHES; i++) {
    const n = await table.prune(before, AUDIT_PRUNE_BATCH);
    total += n;
    if (n < AUDIT_PRUNE_BATCH) break;
    await new Promise<void>((resolve) => p.timers.setTimeout(resolve, 0, 'keep-alive'));
  }
  if (total > 0) onPruned?.(total);
}
