// Opens the PostgreSQL store (store: { kind: postgres, url | urlFile }): reads the URL (a secret file is read once,
// trimmed), connects the pool, fails at once with TESSERA_ERR_STORE_UNAVAILABLE when the database cannot be reached
// or refuses the login, migrates the schema under an advisory lock, and hands back the contract's views plus what
// only replicas need: the leader lock (not campaigning until started) and the shared CA records.
import { join } from 'node:path';
import type { Clock } from '../../../../common/clock.js';
import { TesseraError } from '../../../../common/errors.js';
import { startupError } from '../../../../shared-io/startup-error.js';
import type { Timers } from '../../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../../logger.js';
import { observedView, type StoreFailureObserver } from '../observed-view.js';
import type { ControlPlaneStore } from '../store-contract.js';
import { PgAuditLog } from './pg-audit-log.js';
import { PgAuthorityRecords } from './pg-authority-records.js';
import { PgChangeFeed } from './pg-change-feed.js';
import { type PgUrlSource, pgConnectionConfig, resolvePgUrl } from './pg-connection-config.js';
import { DEFAULT_POOL_SETTINGS, PgDatabase, type PgPoolSettings } from './pg-database.js';
import { PgGrantStore } from './pg-grant-store.js';
import { PgInventoryStore } from './pg-inventory-store.js';
import { PgJwtKeyRecords } from './pg-jwt-key-records.js';
import { PgLeaderLock } from './pg-leader-lock.js';
import { PgMetaStore } from './pg-meta-store.js';
import { migratePostgres } from './pg-migrations.js';
import { PgNonceStore } from './pg-nonce-store.js';
import { PgRegistrationStore } from './pg-registration-store.js';
import { PgReportStore } from './pg-report-store.js';
import { PgRevocationStore } from './pg-revocation-store.js';
import { PgTokenStore } from './pg-token-store.js';

export const PG_AUDIT_FILE = 'audit.log';

export interface PostgresStoreDeps {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: ControlPlaneLogger;
  /** This replica's own data dir: its local audit.log is written there. */
  readonly dataDir: string;
  /** This replica's name (host/pod and pid): the leader's holder, the connections' application_name. */
  readonly replica: string;
  readonly pool?: Partial<PgPoolSettings>;
  /** Change feed catch-up interval (default 5 s). */
  readonly changePollMs?: number;
  /** Leader lock retry and renewal interval (default 3 s; at most a third of the lease). */
  readonly leaderRetryMs?: number;
  /** store.leaderLease: how long a leader's renewal holds (default 30 s). */
  readonly leaderLeaseMs?: number;
  /** Audit rows waiting for the database at most (default 10,000). */
  readonly auditMaxQueued?: number;
  /** audit.logMaxBytes: the local audit.log is cut to audit.log.1 before it would pass it (0: never; default 64 MiB). */
  readonly auditLogMaxBytes?: number;
  /** A store operation failed (the error coded as its caller gets it). */
  readonly onFailure?: StoreFailureObserver;
}

export interface PostgresStore extends ControlPlaneStore {
  readonly kind: 'postgres';
  readonly audit: PgAuditLog;
  readonly changes: PgChangeFeed;
  /** The replicas' leader election; call start() to campaign. close() steps down. */
  readonly leader: PgLeaderLock;
  /** The CA state shared by the replicas. */
  readonly authority: PgAuthorityRecords;
  /** The JWT-SVID signing keys shared by the replicas. */
  readonly jwtKeys: PgJwtKeyRecords;
  /** The database as logs may show it (password masked). */
  readonly databaseName: string;
}

export async function openPostgresStore(source: PgUrlSource, deps: PostgresStoreDeps): Promise<PostgresStore> {
  const conn = await pgConnectionConfig(await resolvePgUrl(source));
  const settings = { ...DEFAULT_POOL_SETTINGS, ...deps.pool };
  const db = new PgDatabase(conn, settings, deps.log, `tessera-control-plane ${deps.replica}`);
  let audit: PgAuditLog;
  try {
    await db.ping();
    const applied = await migratePostgres(db).catch((e: unknown) => {
      // A coded fault (unavailable, newer schema) as it is; anything else (no CREATE privilege…) named as the migration's.
      if (e instanceof TesseraError) throw e;
      throw new TesseraError('TESSERA_ERR_CP_START_FAILED', `PostgreSQL ${db.name}: the schema migration failed: ${(e as Error).message}`, { database: db.name }, { cause: e });
    });
    if (applied.length > 0) deps.log.info({ database: db.name, versions: applied }, 'PostgreSQL schema migrated');
    const file = join(deps.dataDir, PG_AUDIT_FILE);
    try {
      audit = new PgAuditLog(db, { file, clock: deps.clock, timers: deps.timers, log: deps.log, maxQueued: deps.auditMaxQueued, fileMaxBytes: deps.auditLogMaxBytes });
    } catch (e) {
      throw startupError(e, 'TESSERA_ERR_CP_START_FAILED', file);
    }
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  const changes = new PgChangeFeed(db, { timers: deps.timers, log: deps.log, pollMs: deps.changePollMs });
  const leader = new PgLeaderLock(db, { clock: deps.clock, timers: deps.timers, log: deps.log, holder: deps.replica, retryMs: deps.leaderRetryMs, leaseMs: deps.leaderLeaseMs });
  changes.start();
  let closing: Promise<void> | undefined;
  const close = async () => {
    try {
      await leader.stop();
      await changes.close();
      await audit.close();
    } finally {
      await db.close();
    }
  };
  // Errors are coded by PgDatabase already (pg-errors.ts); the views only tell onFailure.
  const view = <T extends object>(v: T, area: string): T => observedView(v, area, deps.onFailure ? { onFailure: deps.onFailure } : {});
  return {
    kind: 'postgres',
    databaseName: db.name,
    audit: view(audit, 'audit'),
    inventory: view(new PgInventoryStore(db), 'inventory'),
    tokens: view(new PgTokenStore(db), 'tokens'),
    grants: view(new PgGrantStore(db), 'grants'),
    meta: view(new PgMetaStore(db), 'meta'),
    revocations: view(new PgRevocationStore(db), 'revocations'),
    registrations: view(new PgRegistrationStore(db), 'registrations'),
    reports: view(new PgReportStore(db), 'reports'),
    nonces: view(new PgNonceStore(db), 'nonces'),
    changes,
    leader,
    authority: view(new PgAuthorityRecords(db), 'ca'),
    jwtKeys: view(new PgJwtKeyRecords(db), 'jwt'),
    /** Idempotent: a second call waits for the first. */
    close() {
      closing ??= close();
      return closing;
    },
  };
}
