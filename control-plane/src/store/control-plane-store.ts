// The control plane's store opened as one: the SQLite file (owner-only, like the rest of the data dir: it holds
// token hashes), the append-only audit log beside it, and the typed views of its tables.

import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startupError } from '../../../shared-io/startup-error.js';
import { AuditLog } from './audit-log.js';
import { openDatabase } from './database.js';
import { GrantStore } from './grant-store.js';
import { InventoryStore } from './inventory-store.js';
import { MetaStore } from './meta-store.js';
import { RegistrationStore } from './registration-store.js';
import { RevocationStore } from './revocation-store.js';
import { TokenStore } from './token-store.js';

export const DATABASE_FILE = 'tessera.db';
export const AUDIT_FILE = 'audit.log';

export interface ControlPlaneStore {
  readonly audit: AuditLog;
  readonly inventory: InventoryStore;
  readonly tokens: TokenStore;
  readonly grants: GrantStore;
  readonly meta: MetaStore;
  readonly revocations: RevocationStore;
  readonly registrations: RegistrationStore;
  /** Closes the audit file, then the database. */
  close(): void;
}

export function openControlPlaneStore(dataDir: string): ControlPlaneStore {
  const dbFile = join(dataDir, DATABASE_FILE);
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(dbFile);
  } catch (e) {
    throw startupError(e, 'TESSERA_ERR_CP_START_FAILED', dbFile);
  }
  let audit: AuditLog | undefined;
  try {
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    const log = new AuditLog(db, join(dataDir, AUDIT_FILE));
    audit = log;
    return {
      audit: log,
      inventory: new InventoryStore(db),
      tokens: new TokenStore(db),
      grants: new GrantStore(db),
      meta: new MetaStore(db),
      revocations: new RevocationStore(db),
      registrations: new RegistrationStore(db),
      close: () => {
        try {
          log.close();
        } finally {
          db.close();
        }
      },
    };
  } catch (e) {
    audit?.close();
    db.close();
    throw e;
  }
}
