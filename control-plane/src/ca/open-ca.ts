// Opens the control plane's CA from its data dir: every committed change is audited and logged, then handed on
// (bundle file, own SVID, config push); an interrupted commit found at start is audited as recovered. The
// crash point is the test seam that kills the process mid-commit (docs/control-plane.md).

import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { AuditLog, InventoryStore } from '../store/store-contract.js';
import { auditCaRecovery } from './audit-recovery.js';
import { type AuthorityPersistence, filePersistence } from './authority-persistence.js';
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
  /** The replicas' shared database instead of <dataDir>/ca, and whether this replica leads (does periodic work). */
  readonly shared?: { readonly persistence: AuthorityPersistence; readonly leads: () => boolean };
  /** After this replica committed a change: tell the other replicas (they refresh). */
  readonly announce?: () => void;
  /** After each committed change has been audited (also for the CA's creation, during open). */
  readonly onChange: () => void;
}

export async function openCa(o: OpenCaOptions): Promise<CaManager> {
  const { clock, audit, crashAt } = o;
  const ca = await CaManager.open({
    store:
      o.shared?.persistence ??
      filePersistence(
        new AuthorityStore({
          dir: join(o.dataDir, 'ca'),
          ...(crashAt ? { crashHook: (p: CrashPoint) => p === crashAt && process.kill(process.pid, 'SIGKILL') } : {}),
        }),
      ),
    ...(o.shared ? { leads: o.shared.leads } : {}),
    trustDomain: o.trustDomain,
    lifetimes: o.lifetimes,
    clock,
    liveSvids: (id, now) => o.inventory.liveByAuthority(id, now),
    onChange: (_snap, events) => {
      for (const e of events) {
        audit.record(clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', authority: e.authority, ...(e.detail ?? {}) });
        o.log.info({ event: e.event, authority: e.authority }, 'CA changed');
      }
      if (events.length > 0) o.announce?.();
      o.onChange();
    },
  });
  await auditCaRecovery(audit, ca.current().authorities, clock.nowMs());
  return ca;
}
