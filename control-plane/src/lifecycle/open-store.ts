// Opens the store the config names: the embedded SQLite file (one process: it leads, the CA lives in <dataDir>/ca),
// or the PostgreSQL database the replicas share (the CA and JWT keys in the database, periodic work by the leader,
// which starts campaigning here). Every failed store operation is told to the store's health (logged, readiness).
import { hostname } from 'node:os';
import type { Clock } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { AuthorityPersistence } from '../ca/authority-persistence.js';
import type { JwtKeyBackend } from '../ca/jwt-key-backend.js';
import { sharedPersistence } from '../ca/shared-authority-store.js';
import { sharedJwtKeys } from '../ca/shared-jwt-keys.js';
import type { ControlPlaneConfig } from '../config/cp-config.js';
import type { ControlPlaneLogger } from '../logger.js';
import { probeHeadroom, removeProbeLeftovers } from '../store/headroom-probe.js';
import { openSqliteStore } from '../store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../store/store-contract.js';
import { StoreHealth } from './store-health.js';

export interface OpenedStore {
  readonly store: ControlPlaneStore;
  /** Whether this process does the work that must happen once (always, with SQLite). */
  readonly leads: () => boolean;
  /** Present with a shared database: where the CA lives instead of <dataDir>/ca. */
  readonly sharedCa?: { readonly persistence: AuthorityPersistence; readonly leads: () => boolean };
  /** Present with a shared database: where the JWT-SVID keys live instead of <dataDir>/jwt. */
  readonly sharedJwt?: { readonly backend: JwtKeyBackend; readonly leads: () => boolean };
  /** This process's name among the replicas. */
  readonly replica: string;
  /** Store failures, logged (rate-limited) and followed by readiness; stopped by store.close(). */
  readonly health: StoreHealth;
}

export async function openStore(config: Pick<ControlPlaneConfig, 'store' | 'dataDir'> & { readonly audit?: Pick<ControlPlaneConfig['audit'], 'logMaxBytes'> }, deps: { clock: Clock; timers: Timers; log: ControlPlaneLogger }): Promise<OpenedStore> {
  const s = config.store;
  const onFeedError = (e: unknown) => deps.log.error({ err: describeError(e) }, 'a change subscriber failed');
  // The probe needs what an issuance needs (audit 24b F3): room in the data dir for audit.log and the WAL, and an
  // issuance-sized row in the inventory's table (written through the observed view, so its failure is told to the
  // health like any other). A failed headroom write is told here.
  let opened: ControlPlaneStore | undefined;
  removeProbeLeftovers(config.dataDir);
  const probe = async (): Promise<void> => {
    try {
      probeHeadroom(config.dataDir);
    } catch (e) {
      health.failed('data-dir', 'probeHeadroom', e);
      throw e;
    }
    await opened?.inventory.probeWrite();
  };
  const health = new StoreHealth({ ...deps, probe });
  const onFailure = health.failed;
  if (s.kind === 'sqlite') {
    opened = await openSqliteStore(config.dataDir, { onFeedError, onFailure, auditLogMaxBytes: config.audit?.logMaxBytes });
    return { store: stoppingHealth(opened, health), leads: () => true, replica: `${hostname()}/${process.pid}`, health };
  }
  // Loaded only here: the PostgreSQL driver (pg) is code and memory a SQLite control plane never needs.
  const { openPostgresStore } = await import('../store/postgres/open-postgres-store.js');
  const store = await openPostgresStore(s.source, {
    ...deps,
    dataDir: config.dataDir,
    replica: s.replica,
    leaderLeaseMs: s.leaderLeaseMs,
    pool: { maxConnections: s.maxConnections, statementTimeoutMs: s.statementTimeoutMs },
    onFailure,
    auditLogMaxBytes: config.audit?.logMaxBytes,
  });
  opened = store;
  const leads = () => store.leader.isLeader();
  store.leader.onChange((leader, term) => deps.log.info({ leader, term, replica: s.replica }, leader ? 'this replica leads' : 'this replica follows'));
  store.leader.start();
  const where = `PostgreSQL ${store.databaseName}`;
  const leaderTerm = () => store.leader.term;
  const persistence = sharedPersistence({ records: store.authority, where, leaderTerm });
  const jwtBackend = sharedJwtKeys(store.jwtKeys, where, leaderTerm);
  return { store: stoppingHealth(store, health), leads, sharedCa: { persistence, leads }, sharedJwt: { backend: jwtBackend, leads }, replica: s.replica, health };
}

/** The store whose close() stops the health's probe first. */
function stoppingHealth(store: ControlPlaneStore, health: StoreHealth): ControlPlaneStore {
  return {
    ...store,
    close: () => {
      health.close();
      return store.close();
    },
  };
}
