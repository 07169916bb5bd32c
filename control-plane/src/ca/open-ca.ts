// Opens the control plane's CA from its data dir: every committed change is audited and logged, then handed on
// (bundle file, own SVID, config push); an interrupted commit found at start is audited as recovered. The
// crash point is the test seam that kills the process mid-commit (docs/control-plane.md).

import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { AuditLog } from '../store/audit-log.js';
import type { InventoryStore } from '../store/inventory-store.js';
import { auditCaRecovery } from './audit-recovery.js';
import { AuthorityStore, type CrashPoint } from './authority-store.js';
import type { CaLifetimes } from './authority.js';
import { CaManager } from './ca-manager.js';

export interface OpenCaOptions {
  readonly dataDir: string;
  readonly trustDomain: TrustDomain;
  readonly lifetimes: CaLifetimes;
  readonly clock: Clock;
  readonly inventory: InventoryStore;
  readonly audit: AuditLog;
  readonly log: { info(obj: Record<string, unknown>, msg: string): void };
  readonly crashAt?: CrashPoint;
  /** After each committed change has been audited (also for the CA's creation, during open). */
  readonly onChange: () => void;
}

export async function openCa(o: OpenCaOptions): Promise<CaManager> {
  const { clock, audit, crashAt } = o;
  const ca = await CaManager.open({
    store: new AuthorityStore({
      dir: join(o.dataDir, 'ca'),
      ...(crashAt ? { crashHook: (p: CrashPoint) => p === crashAt && process.kill(process.pid, 'SIGKILL') } : {}),
    }),
    trustDomain: o.trustDomain,
    lifetimes: o.lifetimes,
    clock,
    liveSvids: (id, now) => o.inventory.liveByAuthority(id, now),
    onChange: (_snap, events) => {
      for (const e of events) {
        audit.record(clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', authority: e.authority, ...(e.detail ?? {}) });
        o.log.info({ event: e.event, authority: e.authority }, 'CA changed');
      }
      o.onChange();
    },
  });
  auditCaRecovery(audit, ca.current().authorities, clock.nowMs());
  return ca;
}
