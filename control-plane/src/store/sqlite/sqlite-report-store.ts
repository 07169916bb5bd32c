// What each proxy last reported, in SQLite: one row per (SPIFFE ID, proxy instance), replaced on every report,
// listed fairly per ID within a row and character budget for the fleet view (fair-report-list.ts), pruned once
// stale; an ID's oldest instances go past its bound.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ProxyReport, ReportStore } from '../store-contract.js';
import { DEFAULT_LIST_LIMIT, fairListSql } from '../fair-report-list.js';

export class SqliteReportStore implements ReportStore {
  readonly #put: StatementSync;
  readonly #list: StatementSync;
  readonly #prune: StatementSync;
  readonly #trim: StatementSync;

  constructor(db: DatabaseSync) {
    this.#put = db.prepare('INSERT OR REPLACE INTO proxy_reports (spiffe_id, instance, received_at_ms, json) VALUES (?, ?, ?, ?)');
    this.#list = db.prepare(fairListSql(['json'], 'octet_length(json)', '?', '?', '?'));
    this.#prune = db.prepare('DELETE FROM proxy_reports WHERE received_at_ms < ?');
    // The primary key (spiffe_id, instance) serves both lookups by ID.
    this.#trim = db.prepare(
      `DELETE FROM proxy_reports WHERE spiffe_id = ? AND instance <> ? AND instance NOT IN
         (SELECT instance FROM proxy_reports WHERE spiffe_id = ? AND instance <> ? ORDER BY received_at_ms DESC, instance LIMIT ?)`,
    );
  }

  async put(r: ProxyReport, keepPerId?: number): Promise<void> {
    this.#put.run(r.spiffeId, r.instance, r.receivedAtMs, JSON.stringify(r));
    if (keepPerId !== undefined) this.#trim.run(r.spiffeId, r.instance, r.spiffeId, r.instance, Math.max(0, keepPerId - 1));
  }

  async list(sinceMs: number, limit = DEFAULT_LIST_LIMIT, maxBytes = Number.MAX_SAFE_INTEGER): Promise<ProxyReport[]> {
    return (this.#list.all(sinceMs, maxBytes, limit) as { json: string }[]).map((row) => JSON.parse(row.json) as ProxyReport);
  }

  async prune(beforeMs: number): Promise<number> {
    return Number(this.#prune.run(beforeMs).changes);
  }
}
