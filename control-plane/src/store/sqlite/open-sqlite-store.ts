// The embedded store opened as one: the SQLite file (owner-only, like the rest of the data dir: it holds token
// hashes), the append-only audit log beside it, the typed views of its tables and an in-process change feed. Every
// view throws its faults coded (TESSERA_ERR_STORE_FULL, _READ_ONLY, _IO, _CORRUPT, _FAILED; store-faults.ts), each
// told to onFailure first.
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startupError } from '../../../../shared-io/startup-error.js';
import { LocalChangeFeed } from '../local-change-feed.js';
import { observedView, type StoreFailureObserver } from '../observed-view.js';
import { sqliteFault } from '../store-faults.js';
import type { ControlPlaneStore } from '../store-contract.js';
import { SqliteAuditLog } from './sqlite-audit-log.js';
import { openDatabase } from './sqlite-database.js';
import { SqliteGrantStore } from './sqlite-grant-store.js';
import { SqliteInventoryStore } from './sqlite-inventory-store.js';
import { SqliteMetaStore } from './sqlite-meta-store.js';
import { SqliteNonceStore } from './sqlite-nonce-store.js';
import { SqliteRegistrationStore } from './sqlite-registration-store.js';
import { SqliteReportStore } from './sqlite-report-store.js';
import { SqliteRevocationStore } from './sqlite-revocation-store.js';
import { SqliteTokenStore } from './sqlite-token-store.js';

export const DATABASE_FILE = 'tessera.db';
export const AUDIT_FILE = 'audit.log';

export interface SqliteStoreOptions {
  /** A change-feed subscriber threw. */
  readonly onFeedError?: (e: unknown) => void;
  /** A store operation failed (the error coded as its caller gets it). */
  readonly onFailure?: StoreFailureObserver;
  /** audit.logMaxBytes: audit.log is cut to audit.log.1 before it would pass it (0: never; default 64 MiB). */
  readonly auditLogMaxBytes?: number;
}

/** Opens (creating and migrating) <dataDir>/tessera.db; TESSERA_ERR_CP_START_FAILED when it cannot be used. */
export async function openSqliteStore(dataDir: string, o: SqliteStoreOptions = {}): Promise<ControlPlaneStore> {
  const dbFile = join(dataDir, DATABASE_FILE);
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(dbFile);
  } catch (e) {
    throw startupError(e, 'TESSERA_ERR_CP_START_FAILED', dbFile);
  }
  let audit: SqliteAuditLog | undefined;
  try {
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    const log = new SqliteAuditLog(db, join(dataDir, AUDIT_FILE), o.auditLogMaxBytes);
    audit = log;
    let closed: Promise<void> | undefined;
    const view = <T extends object>(v: T, area: string): T => observedView(v, area, { map: (e) => sqliteFault(e, dbFile), ...(o.onFailure ? { onFailure: o.onFailure } : {}) });
    return {
      kind: 'sqlite',
      audit: view(log, 'audit'),
      inventory: view(new SqliteInventoryStore(db), 'inventory'),
      tokens: view(new SqliteTokenStore(db), 'tokens'),
      grants: view(new SqliteGrantStore(db), 'grants'),
      meta: view(new SqliteMetaStore(db), 'meta'),
      revocations: view(new SqliteRevocationStore(db), 'revocations'),
      registrations: view(new SqliteRegistrationStore(db), 'registrations'),
      reports: view(new SqliteReportStore(db), 'reports'),
      nonces: view(new SqliteNonceStore(db), 'nonces'),
      changes: new LocalChangeFeed(o.onFeedError),
      close: () => {
        closed ??= (async () => {
          await log.flush();
          try {
            log.close();
          } finally {
            db.close();
          }
        })();
        return closed;
      },
    };
  } catch (e) {
    audit?.close();
    db.close();
    throw e;
  }
}
