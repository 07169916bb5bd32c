// The inventory of issued SVIDs in PostgreSQL, shared by every replica: `tessera certs list`, "does any live SVID
// still chain to this authority" and a serial ban's read of the live SVIDs renewed from a serial see what all of them
// issued. An SVID paid for with a join token is recorded by the statement that spends the token, so no replica,
// killed anywhere, leaves a token spent without its SVID. Rows go `inventory.keep` after they expired (prune).
import type { InventoryStore, IssuedSvidRow, LiveCursor } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';
import { PROBE_ROW, pageBounds, type IssuanceRow as Row, issuanceFromRow as fromRow } from '../store-rows.js';

const COLUMNS = 'serial, spiffe_id, authority_id, intermediate_serial, not_before_ms, not_after_ms, issued_at_ms, attested_as, kind, caller, lineage, chain, depth';
const DEFAULT_LIMIT = 10_000;

/** The row's values in COLUMNS order ($1…$13). */
const values = (r: IssuedSvidRow): unknown[] => [r.serial, r.spiffeId, r.authorityId, r.intermediateSerial, r.notBeforeMs, r.notAfterMs, r.issuedAtMs, r.attestedAs, r.kind, r.caller, r.lineage ?? '', r.chain ?? '', r.depth ?? null];

export class PgInventoryStore implements InventoryStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async find(serial: string): Promise<IssuedSvidRow | undefined> {
    const r = (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM issuances WHERE serial = $1`, [serial])).rows[0];
    return r && fromRow(r);
  }

  async renewalsOf(serial: string): Promise<IssuedSvidRow[]> {
    return (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM issuances WHERE attested_as = $1 ORDER BY issued_at_ms, serial`, [`x509svid:${serial}`])).rows.map(fromRow);
  }

  /** By the (chain, not_after_ms) index: only the chain's live rows are read. */
  async liveInChain(chain: string, depth: number, nowMs: number, limit: number): Promise<IssuedSvidRow[]> {
    const sql = `SELECT ${COLUMNS} FROM issuances WHERE chain = $1 AND not_after_ms > $2 AND depth > $3 ORDER BY depth, serial LIMIT $4`;
    return (await this.#db.query<Row>(sql, [chain, nowMs, depth, limit])).rows.map(fromRow);
  }

  async record(r: IssuedSvidRow): Promise<void> {
    await this.#db.query(`INSERT INTO issuances (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::int)`, values(r));
  }

  /**
   * One statement, so one transaction: the token's conditional UPDATE, and the insert only for the row it
   * returned. A concurrent redemption of the token (any replica) waits on the row lock and, once this one commits,
   * re-checks `used_at_ms` and inserts nothing; a failed insert (a serial taken) rolls the spend back with it.
   */
  async recordWithToken(r: IssuedSvidRow, tokenHash: string, nowMs: number): Promise<boolean> {
    const sql = `WITH spent AS (
        UPDATE join_tokens SET used_at_ms = $14 WHERE hash = $15 AND used_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > $14 RETURNING hash
      )
      INSERT INTO issuances (${COLUMNS}) SELECT $1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint, $8, $9, $10, $11, $12, $13::int FROM spent`;
    return (await this.#db.query(sql, [...values(r), nowMs, tokenHash])).rowCount === 1;
  }

  /**
   * Two statements on the pool (a store view has no transaction of its own): the row another replica could list for
   * that moment has expired at 0 and a serial no SVID has. One left by a failed DELETE is replaced by the next probe.
   */
  async probeWrite(): Promise<void> {
    await this.#db.query('DELETE FROM issuances WHERE serial = $1', [PROBE_ROW.serial]);
    await this.record(PROBE_ROW);
    await this.#db.query('DELETE FROM issuances WHERE serial = $1', [PROBE_ROW.serial]);
  }

  async live(nowMs: number, withinMs?: number, limit = DEFAULT_LIMIT): Promise<IssuedSvidRow[]> {
    const until = withinMs === undefined ? Number.MAX_SAFE_INTEGER : nowMs + withinMs;
    const sql = `SELECT ${COLUMNS} FROM issuances WHERE not_after_ms > $1 AND not_after_ms <= $2 ORDER BY not_after_ms, serial LIMIT $3`;
    return (await this.#db.query<Row>(sql, [nowMs, until, limit])).rows.map(fromRow);
  }

  /** The cursor as a lower bound on not_after_ms: an index range scan on issuances_not_after from it. */
  async livePage(nowMs: number, after: LiveCursor | undefined, limit: number): Promise<IssuedSvidRow[]> {
    const sql = `SELECT ${COLUMNS} FROM issuances WHERE not_after_ms >= $1 AND (not_after_ms > $2 OR serial > $3) ORDER BY not_after_ms, serial LIMIT $4`;
    return (await this.#db.query<Row>(sql, [...pageBounds(nowMs, after), limit])).rows.map(fromRow);
  }

  async all(limit = DEFAULT_LIMIT): Promise<IssuedSvidRow[]> {
    return (await this.#db.query<Row>(`SELECT ${COLUMNS} FROM issuances ORDER BY issued_at_ms DESC, serial LIMIT $1`, [limit])).rows.map(fromRow);
  }

  async liveByAuthority(authorityId: string, nowMs: number): Promise<{ count: number; latestNotAfterMs: number | null }> {
    const r = (await this.#db.query<{ n: number; latest: number | null }>("SELECT count(*) AS n, max(not_after_ms) AS latest FROM issuances WHERE authority_id = $1 AND not_after_ms > $2 AND kind <> 'self'", [authorityId, nowMs])).rows[0];
    return { count: r?.n ?? 0, latestNotAfterMs: r?.latest ?? null };
  }

  /** Run by one replica (the leader), oldest first; each call its own statement, so none holds the table for long. */
  async prune(cutoffMs: number, maxRows: number): Promise<number> {
    const sql = 'DELETE FROM issuances WHERE serial IN (SELECT serial FROM issuances WHERE not_after_ms <= $1 ORDER BY not_after_ms LIMIT $2)';
    return (await this.#db.query(sql, [cutoffMs, maxRows])).rowCount;
  }
}
