// The PostgreSQL schema, as numbered migrations recorded in tessera_schema, applied at start in one transaction
// that first takes a transaction-scoped advisory lock: replicas starting together migrate once, the others wait
// for it and then find nothing to do. The tables are the SQLite store's, in PostgreSQL types, plus what only
// replicas need (the shared CA records and the leader's term). Keys that are compared or sorted are COLLATE "C",
// so ordering is bytewise, as in SQLite, whatever the database's locale.
import { TesseraError } from '../../../../common/errors.js';
import type { PgDatabase } from './pg-database.js';

/** pg_advisory_xact_lock key of the migration step: "tessera" + 1, fixed forever (other apps on the database differ). */
export const MIGRATION_LOCK_KEY = 0x7465_7373_6572_6101n;

/** Index i brings the schema from version i to i + 1; exported for tests. Never edit a released entry: append. */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE issuances (
     serial TEXT COLLATE "C" PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     authority_id TEXT COLLATE "C" NOT NULL,
     intermediate_serial TEXT NOT NULL,
     not_before_ms BIGINT NOT NULL,
     not_after_ms BIGINT NOT NULL,
     issued_at_ms BIGINT NOT NULL,
     attested_as TEXT NOT NULL,
     kind TEXT NOT NULL,
     caller TEXT NOT NULL
   );
   CREATE INDEX issuances_not_after ON issuances (not_after_ms);
   CREATE INDEX issuances_authority ON issuances (authority_id, not_after_ms);
   CREATE INDEX issuances_issued_at ON issuances (issued_at_ms);
   CREATE TABLE join_tokens (
     hash TEXT COLLATE "C" PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL,
     expires_at_ms BIGINT NOT NULL,
     used_at_ms BIGINT,
     revoked_at_ms BIGINT
   );
   CREATE TABLE break_glass (
     id TEXT COLLATE "C" PRIMARY KEY,
     to_pattern TEXT NOT NULL,
     from_json TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL,
     expires_at_ms BIGINT NOT NULL,
     expiry_audited BOOLEAN NOT NULL DEFAULT FALSE
   );
   CREATE TABLE audit (
     seq BIGSERIAL PRIMARY KEY,
     at_ms BIGINT NOT NULL,
     event TEXT COLLATE "C" NOT NULL,
     result TEXT,
     code TEXT,
     spiffe_id TEXT,
     attested_as TEXT,
     serial TEXT,
     not_after_ms BIGINT,
     caller TEXT,
     json TEXT NOT NULL
   );
   CREATE INDEX audit_event ON audit (event, seq);
   CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE revocations (
     kind TEXT COLLATE "C" NOT NULL,
     value TEXT COLLATE "C" NOT NULL,
     reason TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL,
     not_after_ms BIGINT,
     PRIMARY KEY (kind, value)
   );
   CREATE TABLE registrations (
     session TEXT COLLATE "C" NOT NULL,
     spiffe_id TEXT NOT NULL,
     service TEXT COLLATE "C" NOT NULL,
     address TEXT COLLATE "C" NOT NULL,
     endpoint_json TEXT NOT NULL,
     updated_at_ms BIGINT NOT NULL,
     PRIMARY KEY (session, service, address)
   );
   CREATE TABLE proxy_reports (
     spiffe_id TEXT COLLATE "C" NOT NULL,
     instance TEXT COLLATE "C" NOT NULL,
     served_json TEXT NOT NULL,
     checked_at_ms BIGINT NOT NULL,
     received_at_ms BIGINT NOT NULL,
     replica TEXT NOT NULL,
     denials_json TEXT NOT NULL,
     PRIMARY KEY (spiffe_id, instance)
   );
   CREATE INDEX proxy_reports_received ON proxy_reports (received_at_ms);
   CREATE TABLE ca_state (
     id INT PRIMARY KEY CHECK (id = 1),
     version BIGINT NOT NULL,
     state_json TEXT NOT NULL
   );
   CREATE TABLE ca_material (name TEXT COLLATE "C" PRIMARY KEY, pem TEXT NOT NULL);
   CREATE TABLE leader_term (
     id INT PRIMARY KEY CHECK (id = 1),
     term BIGINT NOT NULL,
     holder TEXT NOT NULL,
     acquired_at_ms BIGINT NOT NULL
   );`,
  // 2: registrations owned by the replica that holds the Register call, which heartbeats them (updated_at_ms);
  // rows from before have no owner, nobody heartbeats them, and they are swept once their grace has passed.
  `ALTER TABLE registrations ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT '';
   CREATE INDEX registrations_updated ON registrations (updated_at_ms);`,
  // 3: TPM attestation — nonces spent on any replica, each kept until it expires (a replayed quote finds its row).
  `CREATE TABLE tpm_nonces (id TEXT COLLATE "C" PRIMARY KEY, expires_at_ms BIGINT NOT NULL);
   CREATE INDEX tpm_nonces_expiry ON tpm_nonces (expires_at_ms);`,
  // 4: JWT-SVID signing keys shared by the replicas — one versioned document (key list and PEMs), compare-and-swap.
  `CREATE TABLE jwt_keys_state (id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, state_json TEXT NOT NULL);`,
  // 5: a serial ban reaches the SVIDs renewed from it (their attested_as names it).
  `CREATE INDEX issuances_attested_as ON issuances (attested_as);`,
  // 6: the serial a chain of renewals began with, so a pod's renewals and tokens are rate-limited as that pod's.
  `ALTER TABLE issuances ADD COLUMN lineage TEXT COLLATE "C" NOT NULL DEFAULT '';`,
  // 7: audit rows older than `audit.keep` are deleted oldest first, in batches.
  `CREATE INDEX audit_at ON audit (at_ms);`,
  // 8: each SVID's renewal tree and depth in it: a serial ban reads the live SVIDs renewed from a serial by the
  // index (a chain's live rows only), with no row between them needed, so expired rows can go. Rows from before keep
  // '' and NULL (revocations follow their renewal links, renewal-reach.ts).
  `ALTER TABLE issuances ADD COLUMN chain TEXT COLLATE "C" NOT NULL DEFAULT '';
   ALTER TABLE issuances ADD COLUMN depth INT;
   CREATE INDEX issuances_chain ON issuances (chain, not_after_ms);`,
  // 9: the leader's lease: its last renewal on the database's clock and the session holding the lock, so a follower
  // can end a leader that stopped renewing (a row from before has neither and is never judged stale).
  `ALTER TABLE leader_term ADD COLUMN renewed_at TIMESTAMPTZ;
   ALTER TABLE leader_term ADD COLUMN backend_pid INT;`,
];

/** Brings the database to the newest schema; returns the versions it applied (none when another replica did). */
export async function migratePostgres(db: PgDatabase, migrations: readonly string[] = PG_MIGRATIONS): Promise<number[]> {
  return db.tx(async (q) => {
    // Taken before anything is read: two replicas never both see "version 0" and both create the tables.
    await q.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await q.query('CREATE TABLE IF NOT EXISTS tessera_schema (version INT PRIMARY KEY)');
    const current = (await q.query<{ v: number | null }>('SELECT max(version) AS v FROM tessera_schema')).rows[0]?.v ?? 0;
    if (current > migrations.length) {
      throw new TesseraError(
        'TESSERA_ERR_CP_START_FAILED',
        `PostgreSQL ${db.name}: schema version ${current} is newer than this Tessera knows (${migrations.length}); run the newer version, or restore the database`,
        { database: db.name },
      );
    }
    const applied: number[] = [];
    for (let v = current; v < migrations.length; v++) {
      await q.query(migrations[v]!);
      await q.query('INSERT INTO tessera_schema (version) VALUES ($1)', [v + 1]);
      applied.push(v + 1);
    }
    return applied;
  });
}
