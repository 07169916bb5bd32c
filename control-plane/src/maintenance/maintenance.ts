// The control plane's upkeep as scheduled tasks: every tick, expired Watch callers, break-glass expiry, the
// gauges that are sampled and self-SVID renewal; every 5 s CA maintenance (rotation, pruning); every minute the
// rate limiter's idle buckets; every hour join tokens past their keep time.

import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { ControlPlaneMetrics } from '../admin/metrics.js';
import { MaintenanceScheduler, type MaintenanceTask } from './maintenance-scheduler.js';

export const CA_MAINTENANCE_EVERY_MS = 5_000;
export const LIMITER_SWEEP_EVERY_MS = 60_000;
export const TOKEN_PRUNE_EVERY_MS = 3_600_000;
/** A join token is kept (for `token list` and the audit trail) this long after it expired. */
export const TOKEN_KEEP_MS = 24 * 3_600_000;

export interface MaintenanceParts {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly tickMs: number;
  readonly hub: { tick(): void };
  readonly breakGlass: { expire(): unknown; active(): readonly unknown[] };
  readonly server: { readonly connections: number };
  readonly metrics: Pick<ControlPlaneMetrics, 'breakGlassActive' | 'grpcConnections'>;
  /** Reissues the control plane's own SVID when it is due. */
  readonly renewSelf: () => void;
  readonly limiter: { sweep(): void };
  readonly tokens: { prune(nowMs: number, keepMs: number): unknown };
  readonly ca: { maintain(): Promise<unknown> };
  readonly onFailure: (message: string, error: unknown) => void;
}

export function controlPlaneMaintenance(p: MaintenanceParts): MaintenanceScheduler {
  const tick = 'maintenance tick failed';
  const tasks: MaintenanceTask[] = [
    {
      name: 'tick',
      everyMs: p.tickMs,
      failure: tick,
      run: () => {
        p.hub.tick();
        p.breakGlass.expire();
        p.metrics.breakGlassActive.set(p.breakGlass.active().length);
        p.metrics.grpcConnections.set(p.server.connections);
        p.renewSelf();
      },
    },
    { name: 'limiter-sweep', everyMs: LIMITER_SWEEP_EVERY_MS, failure: tick, run: () => p.limiter.sweep() },
    { name: 'token-prune', everyMs: TOKEN_PRUNE_EVERY_MS, failure: tick, run: () => p.tokens.prune(p.clock.nowMs(), TOKEN_KEEP_MS) },
    { name: 'ca-maintenance', everyMs: CA_MAINTENANCE_EVERY_MS, failure: 'CA maintenance failed', run: () => p.ca.maintain() },
  ];
  return new MaintenanceScheduler({ clock: p.clock, timers: p.timers, checkEveryMs: p.tickMs, tasks, onFailure: (t, e) => p.onFailure(t.failure, e) });
}
