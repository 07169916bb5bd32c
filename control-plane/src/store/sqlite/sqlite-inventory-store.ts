// The inventory of issued SVIDs in SQLite: who got which serial, from which authority, valid until when. Answers
// `tessera certs list`, "does any live SVID still chain to this authority", the renewal lineage and the live SVIDs
// renewed from a serial. An SVID paid for with a join token is recorded in the transaction that spends the token, so
// a kill leaves no token spent without its SVID. Rows go `inventory.keep` after they expired (prune).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { InventoryStore, IssuedSvidRow, LiveCursor } from '../store-contract.js';
import { PROBE_ROW, pageBounds, type IssuanceRow as Row, issuanceFromRow as fromRow } from '../store-rows.js';

export class SqliteInventoryStore implements InventoryStore {
  readonly #db: DatabaseSync;
  readonly #delete: StatementSync;
  readonly #insert: StatementSync;
  readonly #live: StatementSync;
  readonly #livePage: StatementSync;
  readonly #liveByAuthority: StatementSync;
  readonly #list: StatementSync;
  readonly #bySerial: StatementSync;
  readonly #renewals: StatementSync;
  readonly #spendToken: StatementSync;
  readonly #liveInChain: StatementSync;
  readonly #prune: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#delete = db.prepare('DELETE FROM issuances WHERE serial = ?');
    this.#insert = db.prepare(
      `INSERT INTO issuances (serial, spiffe_id, authority_id, intermediate_serial, not_before_ms, not_after_ms, issued_at_ms, attested_as, kind, caller, lineage, chain, depth)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#live = db.prepare('SELECT * FROM issuances WHERE not_after_ms > ? AND not_after_ms <= ? ORDER BY not_after_ms, serial LIMIT ?');
    // The cursor as a lower bound on not_after_ms: SQLite walks issuances_not_after from it, sorting only ties by
    // serial. Written as a row value, it walked the index from the start for every page (O(n) a page).
    this.#livePage = db.prepare('SELECT * FROM issuances WHERE not_after_ms >= ? AND (not_after_ms > ? OR serial > ?) ORDER BY not_after_ms, serial LIMIT ?');
    this.#liveByAuthority = db.prepare("SELECT count(*) AS n, max(not_after_ms) AS latest FROM issuances WHERE authority_id = ? AND not_after_ms > ? AND kind <> 'self'");
    this.#list = db.prepare('SELECT * FROM issuances ORDER BY issued_at_ms DESC, serial LIMIT ?');
    this.#bySerial = db.prepare('SELECT * FROM issuances WHERE serial = ?');
    this.#renewals = db.prepare('SELECT * FROM issuances WHERE attested_as = ? ORDER BY issued_at_ms, serial');
    this.#spendToken = db.prepare('UPDATE join_tokens SET used_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > ?');
    // By (chain, not_after_ms): only the chain's live rows are read, however many expired ones it still holds.
    this.#liveInChain = db.prepare('SELECT * FROM issuances INDEXED BY issuances_chain WHERE chain = ? AND not_after_ms > ? AND depth > ? ORDER BY depth, serial LIMIT ?');
    this.#prune = db.prepare('DELETE FROM issuances WHERE serial IN (SELECT serial FROM issuances WHERE not_after_ms <= ? ORDER BY not_after_ms LIMIT ?)');
  }

  /** The SVID with this serial (lower-case hex as recorded), if this control plane issued it. */
  async find(serial: string): Promise<IssuedSvidRow | undefined> {
    const r = this.#bySerial.get(serial) as Row | undefined;
    return r && fromRow(r);
  }

  async renewalsOf(serial: string): Promise<IssuedSvidRow[]> {
    return (this.#renewals.all(`x509svid:${serial}`) as unknown as Row[]).map(fromRow);
  }

  async liveInChain(chain: string, depth: number, nowMs: number, limit: number): Promise<IssuedSvidRow[]> {
    return (this.#liveInChain.all(chain, nowMs, depth, limit) as unknown as Row[]).map(fromRow);
  }

  async record(r: IssuedSvidRow): Promise<void> {
    this.#insertRow(r);
  }

  /**
   * One transaction, synchronous from BEGIN to COMMIT (no other caller's statement runs inside it): the conditional
   * update, so of two redemptions of one token only the first changes the row, then the insert; a failed insert
   * rolls the spend back.
   */
  async recordWithToken(r: IssuedSvidRow, tokenHash: string, nowMs: number): Promise<boolean> {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const spent = Number(this.#spendToken.run(nowMs, tokenHash, nowMs).changes) === 1;
      if (spent) this.#insertRow(r);
      this.#db.exec(spent ? 'COMMIT' : 'ROLLBACK');
      return spent;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  /**
   * One transaction: the insert's pages (table and indexes) go to the WAL at COMMIT like an issuance's. Synchronous
   * from BEGIN to COMMIT: no other caller's statement can run inside it (an await would let one in).
   */
  async probeWrite(): Promise<void> {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      this.#delete.run(PROBE_ROW.serial);
      this.#insertRow(PROBE_ROW);
      this.#delete.run(PROBE_ROW.serial);
      this.#db.exec('COMMIT');
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  #insertRow(r: IssuedSvidRow): void {
    this.#insert.run(r.serial, r.spiffeId, r.authorityId, r.intermediateSerial, r.notBeforeMs, r.notAfterMs, r.issuedAtMs, r.attestedAs, r.kind, r.caller, r.lineage ?? '', r.chain ?? '', r.depth ?? null);
  }

  async live(nowMs: number, withinMs?: number, limit = 10_000): Promise<IssuedSvidRow[]> {
    const until = withinMs === undefined ? Number.MAX_SAFE_INTEGER : nowMs + withinMs;
    return (this.#live.all(nowMs, until, limit) as unknown as Row[]).map(fromRow);
  }

  async livePage(nowMs: number, after: LiveCursor | undefined, limit: number): Promise<IssuedSvidRow[]> {
    const [from, na, serial] = pageBounds(nowMs, after);
    return (this.#livePage.all(from, na, serial, limit) as unknown as Row[]).map(fromRow);
  }

  async all(limit = 10_000): Promise<IssuedSvidRow[]> {
    return (this.#list.all(limit) as unknown as Row[]).map(fromRow);
  }

  async liveByAuthority(authorityId: string, nowMs: number): Promise<{ count: number; latestNotAfterMs: number | null }> {
    const r = this.#liveByAuthority.get(authorityId, nowMs) as { n: number; latest: number | null };
    return { count: r.n, latestNotAfterMs: r.latest };
  }

  /** Oldest first, by the index on expiry; one statement, so SQLite's single writer is held for one batch only. */
  async prune(cutoffMs: number, maxRows: number): Promise<number> {
    return Number(this.#prune.run(cutoffMs, maxRows).changes);
  }
}
