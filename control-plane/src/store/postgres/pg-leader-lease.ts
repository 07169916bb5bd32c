// The SQL of the leader's lease (DESIGN.md section 12): the advisory lock alone has no deadline (a frozen leader's
// session stays up, the kernel answers its keepalives), so the leader also renews leader_term.renewed_at on the
// database's clock, and a follower that finds it stale past the lease ends the holder's session
// (pg_terminate_backend, allowed for the same role), which frees the lock for the next try. Every statement reads
// only the database's clock: the replicas' clocks never meet.
import type pg from 'pg';

/** The leader's own connection (a session: the lock lives on it). */
type Session = Pick<pg.ClientBase, 'query'>;

/** pg_try_advisory_lock key of the leader: "tessera" + 2, fixed forever. */
export const LEADER_LOCK_KEY = 0x7465_7373_6572_6102n;

const KEY = LEADER_LOCK_KEY.toString();
/** pg_locks names a bigint advisory key by its two halves (objsubid 1). */
const KEY_HI = String(LEADER_LOCK_KEY >> 32n);
const KEY_LO = String(LEADER_LOCK_KEY & 0xffff_ffffn);

/**
 * Takes the lock and, in the same statement, bumps the term and records this session and the first renewal: a
 * holder never holds the lock without its row naming it (a follower judging the lease always sees who holds it).
 * Returns the new term, or null when another session holds the lock.
 */
export async function acquireLeadership(q: Session, holder: string, acquiredAtMs: number): Promise<number | null> {
  const r = await q.query<{ term: string }>(
    `WITH got AS (SELECT pg_try_advisory_lock($1) AS got)
     INSERT INTO leader_term (id, term, holder, acquired_at_ms, renewed_at, backend_pid)
     SELECT 1, 1, $2, $3, now(), pg_backend_pid() FROM got WHERE got.got
     ON CONFLICT (id) DO UPDATE SET term = leader_term.term + 1, holder = EXCLUDED.holder,
       acquired_at_ms = EXCLUDED.acquired_at_ms, renewed_at = EXCLUDED.renewed_at, backend_pid = EXCLUDED.backend_pid
     RETURNING term`,
    [KEY, holder, acquiredAtMs],
  );
  const term = r.rows[0]?.term;
  return term === undefined ? null : Number(term);
}

/** The leader's heartbeat: true while the row still names this term and this session (nobody took over). */
export async function renewLeadership(q: Session, term: number): Promise<boolean> {
  const r = await q.query('UPDATE leader_term SET renewed_at = now() WHERE id = 1 AND term = $1 AND backend_pid = pg_backend_pid()', [term]);
  return (r.rowCount ?? 0) === 1;
}

export interface StaleLeader {
  readonly holder: string;
  readonly term: number;
  /** How long past its last renewal, on the database's clock. */
  readonly staleMs: number;
  /** Whether its session was signalled to end. */
  readonly terminated: boolean;
}

/**
 * Ends the lock holder's session when its last renewal is older than leaseMs on the database's clock, and only when
 * the session the row names is the one holding the lock (a recycled pid, or a row written by an older Tessera
 * without renewals, is never ended). Returns the stale leader, or null when the lease holds (or nobody holds it).
 */
export async function endStaleLeadership(q: Session, leaseMs: number): Promise<StaleLeader | null> {
  const r = await q.query<{ holder: string; term: string; stale_ms: number; terminated: boolean }>(
    `SELECT t.holder, t.term, (EXTRACT(EPOCH FROM now() - t.renewed_at) * 1000)::float8 AS stale_ms,
            pg_terminate_backend(t.backend_pid) AS terminated
     FROM leader_term t
     WHERE t.id = 1 AND t.renewed_at < now() - make_interval(secs => $1::float8 / 1000)
       AND EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.pid = t.backend_pid AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.classid = $2::oid AND l.objid = $3::oid
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
    [leaseMs, KEY_HI, KEY_LO],
  );
  const row = r.rows[0];
  return row ? { holder: row.holder, term: Number(row.term), staleMs: Math.round(row.stale_ms), terminated: row.terminated } : null;
}
