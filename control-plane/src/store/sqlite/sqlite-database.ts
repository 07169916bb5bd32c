// Opens the control plane's SQLite file (node:sqlite) and brings its schema up to date, one migration per
// transaction. Only store/ sees SQL.
import { DatabaseSync } from 'node:sqlite';

/** One SQL script per schema version (index 0 brings 0 → 1); exported for the upgrade tests. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE issuances (
     serial TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     authority_id TEXT NOT NULL,
     intermediate_serial TEXT NOT NULL,
     not_before_ms INTEGER NOT NULL,
     not_after_ms INTEGER NOT NULL,
     issued_at_ms INTEGER NOT NULL,
     attested_as TEXT NOT NULL,
     kind TEXT NOT NULL,
     caller TEXT NOT NULL
   );
   CREATE INDEX issuances_not_after ON issuances(not_after_ms);
   CREATE INDEX issuances_authority ON issuances(authority_id, not_after_ms);
   CREATE TABLE join_tokens (
     hash TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     expires_at_ms INTEGER NOT NULL,
     used_at_ms INTEGER
   );
   CREATE TABLE break_glass (
     id TEXT PRIMARY KEY,
     to_pattern TEXT NOT NULL,
     from_json TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     expires_at_ms INTEGER NOT NULL,
     expiry_audited INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at_ms INTEGER NOT NULL,
     event TEXT NOT NULL,
     result TEXT,
     code TEXT,
     spiffe_id TEXT,
     attested_as TEXT,
     serial TEXT,
     not_after_ms INTEGER,
     caller TEXT,
     json TEXT NOT NULL
   );
   CREATE INDEX audit_event ON audit(event, at_ms);
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: revocation — operator bans of SPIFFE IDs and SVID serials, and revoked join tokens.
  `CREATE TABLE revocations (
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     not_after_ms INTEGER,
     PRIMARY KEY (kind, value)
   );
   ALTER TABLE join_tokens ADD COLUMN revoked_at_ms INTEGER;`,
  // 3: service registry — self-registrations, kept so a restarted control plane serves them until re-registered.
  `CREATE TABLE registrations (
     session TEXT NOT NULL,
     spiffe_id TEXT NOT NULL,
     service TEXT NOT NULL,
     address TEXT NOT NULL,
     endpoint_json TEXT NOT NULL,
     updated_at_ms INTEGER NOT NULL,
     PRIMARY KEY (session, service, address)
   );`,
  // 4: what each proxy last reported (the SVID each listener serves, its denials), one row per proxy process.
  `CREATE TABLE proxy_reports (
     spiffe_id TEXT NOT NULL,
     instance TEXT NOT NULL,
     received_at_ms INTEGER NOT NULL,
     json TEXT NOT NULL,
     PRIMARY KEY (spiffe_id, instance)
   );
   CREATE INDEX proxy_reports_received ON proxy_reports(received_at_ms);`,
  // 5: several registries on one store — each session's owner (rows from before have none: nobody heartbeats them,
  // so they are swept once their grace has passed) and the heartbeat index the sweep uses.
  `ALTER TABLE registrations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
   CREATE INDEX registrations_updated ON registrations(updated_at_ms);`,
  // 6: TPM attestation — nonces spent, each kept until it expires (a replayed quote finds its row).
  `CREATE TABLE tpm_nonces (id TEXT PRIMARY KEY, expires_at_ms INTEGER NOT NULL);
   CREATE INDEX tpm_nonces_expiry ON tpm_nonces(expires_at_ms);`,
  // 7: a serial ban reaches the SVIDs renewed from it (their attested_as names it).
  `CREATE INDEX issuances_attested_as ON issuances(attested_as);`,
  // 8: the serial a chain of renewals began with, so a pod's renewals and tokens are rate-limited as that pod's.
  `ALTER TABLE issuances ADD COLUMN lineage TEXT NOT NULL DEFAULT '';`,
  // 9: audit rows older than `audit.keep` are deleted oldest first, in batches.
  `CREATE INDEX audit_at ON audit(at_ms);`,
  // 10: each SVID's renewal tree and depth in it: a serial ban reads the live SVIDs renewed from a serial by the
  // index (a chain's live rows only), with no row between them needed, so expired rows can go. Rows from before keep
  // '' and NULL (revocations follow their renewal links, renewal-reach.ts).
  `ALTER TABLE issuances ADD COLUMN chain TEXT NOT NULL DEFAULT '';
   ALTER TABLE issuances ADD COLUMN depth INTEGER;
   CREATE INDEX issuances_chain ON issuances(chain, not_after_ms);`,
];

const SCHEMA_VERSION = MIGRATIONS.length;

export function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 2000;');
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  for (let v = row.user_version; v < SCHEMA_VERSION; v++) {
    db.exec('BEGIN');
    try {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  }
  return db;
}
