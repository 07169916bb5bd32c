// Opens the control plane's CA from its data dir: every committed change is audited and logged, then handed on
// (bundle file, own SVID, config push); an interrupted commit found at start is audited as recovered. The
// crash point is the test seam that kills the process mid-commit (docs/control-plane.md). With `ca.root: offline`
// and no authority yet, it serves the CA's operator routes and waits for the first installed intermediate
// (offline-root-wait.ts); an offline root's intermediate past half its chain's life, and the signing authority's root
// near its end (chain-end.ts), are warnings (at most hourly per certificate).

import { join } from 'node:path';
import type { Counter } from 'prom-client';
import type { Clock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { realTimers, type Timers } from '../../../shared-io/timers.js';
import { adminSocketPath } from '../admin/admin-client.js';
import type { AuditLog, InventoryStore } from '../store/store-contract.js';
import { auditCaRecovery } from './audit-recovery.js';
import { type CaLifetimes, serialOf } from './authority.js';
import { type AuthorityPersistence, filePersistence } from './authority-persistence.js';
import { AuthorityStore, type CrashPoint } from './authority-store.js';
import { CaManager } from './ca-manager.js';
import { awaitFirstIntermediate } from './offline-root-wait.js';

export interface OpenCaOptions {
  readonly dataDir: string;
  readonly trustDomain: TrustDomain;
  readonly lifetimes: CaLifetimes;
  /** `ca.root`: offline = no root is ever made here (default managed). */
  readonly rootMode?: 'managed' | 'offline';
  readonly clock: Clock;
  readonly timers?: Timers;
  readonly inventory: InventoryStore;
  readonly audit: AuditLog;
  readonly log: { info(obj: Record<string, unknown>, msg: string): void; warn?(obj: Record<string, unknown>, msg: string): void; error?(obj: Record<string, unknown>, msg: string): void };
  readonly crashAt?: CrashPoint;
  /** The replicas' shared database instead of <dataDir>/ca, and whether this replica leads (does periodic work). */
  readonly shared?: { readonly persistence: AuthorityPersistence; readonly leads: () => boolean };
  /** After this replica committed a change: tell the other replicas (they refresh). */
  readonly announce?: () => void;
  /** After each committed change has been audited (also for the CA's creation, during open). */
  readonly onChange: () => void;
  /** tessera_ca_intermediate_installs_total, for installs made while waiting. */
  readonly installs?: Counter<'result' | 'reason'>;
  /** Resolves when the process is asked to stop: ends a wait for the first intermediate. */
  readonly stop?: Promise<unknown> | undefined;
}

const WARN_EVERY_MS = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const secondsLeft = (notAfterMs: number, now: number) => Math.max(0, Math.round((notAfterMs - now) / 1000));

export async function openCa(o: OpenCaOptions): Promise<CaManager> {
  const { clock, audit, crashAt } = o;
  const warned = new Map<string, number>();
  /** At most one warning an hour per certificate. */
  const due = (key: string, now: number): boolean => {
    if (now - (warned.get(key) ?? Number.NEGATIVE_INFINITY) < WARN_EVERY_MS) return false;
    warned.set(key, now);
    return true;
  };
  const store =
    o.shared?.persistence ??
    filePersistence(
      new AuthorityStore({
        dir: join(o.dataDir, 'ca'),
        clock,
        trustDomain: o.trustDomain,
        ...(crashAt ? { crashHook: (p: CrashPoint) => p === crashAt && process.kill(process.pid, 'SIGKILL') } : {}),
      }),
    );
  // On a read-only plug-in Secret the intermediate is renewed in the Secret itself: intermediate-csr is refused there.
  const renewal =
    store.mode === 'fixed'
      ? "have the root sign a new intermediate and put it in the Secret (ca-cert.pem, ca-key.pem), then restart the replicas (docs/offline-root.md, 'Kubernetes: a plug-in CA Secret')"
      : 'have the root sign a new one (`tessera ca intermediate-csr`, then `tessera ca install-intermediate`)';
  const ca = await CaManager.open({
    store,
    ...(o.shared ? { leads: o.shared.leads } : {}),
    trustDomain: o.trustDomain,
    lifetimes: o.lifetimes,
    ...(o.rootMode ? { rootMode: o.rootMode } : {}),
    clock,
    liveSvids: (id, now) => o.inventory.liveByAuthority(id, now),
    onChange: (_snap, events) => {
      for (const e of events) {
        audit.record(clock.nowMs(), { event: e.event, result: 'ok', caller: 'control-plane', ...(e.authority ? { authority: e.authority } : {}), ...(e.detail ?? {}) });
        o.log.info({ event: e.event, ...(e.authority ? { authority: e.authority } : {}) }, 'CA changed');
      }
      if (events.length > 0) o.announce?.();
      o.onChange();
    },
    onIntermediateDue: (authority, cert, chain) => {
      const now = clock.nowMs();
      if (!due(`int:${serialOf(cert)}`, now)) return;
      o.log.warn?.(
        { authority, serial: serialOf(cert), notAfter: iso(chain.notAfterMs), secondsLeft: secondsLeft(chain.notAfterMs, now) },
        `the offline root's signing intermediate is past half its lifetime and cannot be renewed here: ${renewal}; issuance stops when it expires`,
      );
    },
    onRootDue: (authority, root, managed, prepared) => {
      const now = clock.nowMs();
      if (!due(`root:${root.fingerprint256}`, now)) return;
      const next = prepared
        ? `authority ${prepared} is prepared: once every proxy has its root, \`tessera ca activate\``
        : managed
          ? 'prepare a successor (`tessera ca prepare`), let it reach every proxy, then `tessera ca activate`'
          : 'install an intermediate of a new root (a new authority, prepared), let it reach every proxy, then `tessera ca activate`';
      o.log.warn?.(
        { authority, root: managed ? 'managed' : 'offline', notAfter: iso(root.validToDate.getTime()), secondsLeft: secondsLeft(root.validToDate.getTime(), now), prepared, next },
        "the signing authority's root is near its end and is not replaced by itself: once it expires nothing chaining to it verifies and nothing is issued (what to do: next)",
      );
    },
  });
  if (!ca.ready) {
    await awaitFirstIntermediate({ ca, trustDomain: o.trustDomain, inventory: o.inventory, audit, clock, socketPath: adminSocketPath(o.dataDir), timers: o.timers ?? realTimers, log: { warn: (x, m) => o.log.warn?.(x, m), error: (x, m) => o.log.error?.(x, m) }, stop: o.stop, ...(o.installs ? { installs: o.installs } : {}) });
  }
  await auditCaRecovery(audit, ca.current().authorities, clock.nowMs());
  return ca;
}
