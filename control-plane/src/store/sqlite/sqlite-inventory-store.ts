// The inventory of issued SVIDs in SQLite: who got which serial, from which authority, valid until when. Answers
// `tessera certs list`, "does any live SVID still chain to this authority" and the renewal lineage. An SVID paid for
// with a join token is recorded in the transaction that spends the token, so a kill leaves no token spent without its
// SVID. The prune's statements name their index: its deletes reach only rows they may delete through the (chain, depth)
// index, never the old rows a long-lived chain keeps, which the index on expiry would walk first.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { type InventoryPruneStatements, type KeptChain, pruneInventory } from '../inventory-prune.js';
import type { InventoryPrune, InventoryStore, IssuedSvidRow } from '../store-contract.js';
import { PROBE_ROW, type IssuanceRow as Row, issuanceFromRow as fromRow } from '../store-rows.js';

export class SqliteInventoryStore implements InventoryStore {
  readonly #db: DatabaseSync;
  readonly #delete: StatementSync;
  readonly #insert: StatementSync;
  readonly #live: StatementSync;
  readonly #liveByAuthority: StatementSync;
  readonly #list: StatementSync;
  readonly #bySerial: StatementSync;
  readonly #renewals: StatementSync;
  readonly #spendToken: StatementSync;
  readonly #prune: InventoryPruneStatements;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#delete = db.prepare('DELETE FROM issuances WHERE serial = ?');
    this.#insert = db.prepare(
      `INSERT INTO issuances (serial, spiffe_id, authority_id, intermediate_serial, not_before_ms, not_after_ms, issued_at_ms, attested_as, kind, caller, lineage, chain, depth)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#live = db.prepare('SELECT * FROM issuances WHERE not_after_ms > ? AND not_after_ms <= ? ORDER BY not_after_ms, serial LIMIT ?');
    this.#liveByAuthority = db.prepare('SELECT count(*) AS n, max(not_after_ms) AS latest FROM issuances WHERE authority_id = ? AND not_after_ms > ?');
    this.#list = db.prepare('SELECT * FROM issuances ORDER BY issued_at_ms DESC, serial LIMIT ?');
    this.#bySerial = db.prepare('SELECT * FROM issuances WHERE serial = ?');
    this.#renewals = db.prepare('SELECT * FROM issuances WHERE attested_as = ? ORDER BY issued_at_ms, serial');
    this.#spendToken = db.prepare('UPDATE join_tokens SET used_at_ms = ? WHERE hash = ? AND used_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > ?');
    this.#prune = pruneStatements(db);
  }

  /** The SVID with this serial (lower-case hex as recorded), if this control plane issued it. */
  async find(serial: string): Promise<IssuedSvidRow | undefined> {
    const r = this.#bySerial.get(serial) as Row | undefined;
    return r && fromRow(r);
  }

  async renewalsOf(serial: string): Promise<IssuedSvidRow[]> {
    return (this.#renewals.all(`x509svid:${serial}`) as unknown as Row[]).map(fromRow);
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

  async all(limit = 10_000): Promise<IssuedSvidRow[]> {
    return (this.#list.all(limit) as unknown as Row[]).map(fromRow);
  }

  async liveByAuthority(authorityId: string, nowMs: number): Promise<{ count: number; latestNotAfterMs: number | null }> {
    const r = this.#liveByAuthority.get(authorityId, nowMs) as { n: number; latest: number | null };
    return { count: r.n, latestNotAfterMs: r.latest };
  }

  async prune(p: InventoryPrune): Promise<number> {
    return pruneInventory(this.#prune, p);
  }
}

/** The prune's statements (inventory-prune.ts), each a single synchronous statement of at most `limit` rows. */
function pruneStatements(db: DatabaseSync): InventoryPruneStatements {
  const del = (where: string) => db.prepare(`DELETE FROM issuances WHERE serial IN (SELECT serial FROM issuances INDEXED BY issuances_chain WHERE ${where} AND not_after_ms <= ? LIMIT ?)`);
  // By expiry: only the rows kept are read (the planner would walk the whole chain index for the GROUP BY).
  const kept = db.prepare('SELECT chain, min(depth) AS minDepth FROM issuances INDEXED BY issuances_not_after WHERE not_after_ms > ? GROUP BY chain ORDER BY chain');
  const between = del('chain > ? AND chain < ?');
  const beyond = del('chain > ?');
  const shallow = del('chain = ? AND depth < ?');
  const old = del("chain = ''");
  const anyOld = db.prepare("SELECT 1 AS x FROM issuances INDEXED BY issuances_chain WHERE chain = '' LIMIT 1");
  const isOld = db.prepare("SELECT 1 AS x FROM issuances WHERE serial = ? AND chain = ''");
  const changes = (r: { changes: number | bigint }) => Number(r.changes);
  return {
    keptChains: async (cutoffMs) => kept.all(cutoffMs) as unknown as KeptChain[],
    deleteBetween: async (after, before, cutoffMs, limit) => changes(before === undefined ? beyond.run(after, cutoffMs, limit) : between.run(after, before, cutoffMs, limit)),
    deleteShallow: async (chain, belowDepth, cutoffMs, limit) => changes(shallow.run(chain, belowDepth, cutoffMs, limit)),
    anyWithoutChain: async () => anyOld.get() !== undefined,
    withoutChain: async (serial) => isOld.get(serial) !== undefined,
    deleteWithoutChain: async (cutoffMs, limit) => changes(old.run(cutoffMs, limit)),
  };
}
