// What each proxy last reported (the serial each listener serves, its denials), one row per proxy instance in
// PostgreSQL, whichever replica received it: the fleet view is the same from every replica, listed as the SQLite
// store lists it (fair-report-list.ts). An ID's oldest instances go past its bound (two replicas trimming at once
// may leave one extra row until the next report).
import { DEFAULT_LIST_LIMIT, fairListSql } from '../fair-report-list.js';
import type { ProxyReport, ReportStore } from '../store-contract.js';
import type { PgQueryable } from './pg-database.js';

interface Row {
  spiffe_id: string;
  instance: string;
  served_json: string;
  checked_at_ms: number;
  received_at_ms: number;
  replica: string;
  denials_json: string;
}

const fromRow = (r: Row): ProxyReport => ({
  spiffeId: r.spiffe_id,
  instance: r.instance,
  served: JSON.parse(r.served_json) as ProxyReport['served'],
  checkedAtMs: r.checked_at_ms,
  receivedAtMs: r.received_at_ms,
  replica: r.replica,
  denials: JSON.parse(r.denials_json) as ProxyReport['denials'],
});

const COLUMNS = 'spiffe_id, instance, served_json, checked_at_ms, received_at_ms, replica, denials_json';

export class PgReportStore implements ReportStore {
  readonly #db: PgQueryable;

  constructor(db: PgQueryable) {
    this.#db = db;
  }

  async put(r: ProxyReport, keepPerId?: number): Promise<void> {
    await this.#db.query(
      `INSERT INTO proxy_reports (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (spiffe_id, instance) DO UPDATE SET served_json = EXCLUDED.served_json, checked_at_ms = EXCLUDED.checked_at_ms,
         received_at_ms = EXCLUDED.received_at_ms, replica = EXCLUDED.replica, denials_json = EXCLUDED.denials_json`,
      [r.spiffeId, r.instance, JSON.stringify(r.served), r.checkedAtMs, r.receivedAtMs, r.replica, JSON.stringify(r.denials)],
    );
    if (keepPerId === undefined) return;
    await this.#db.query(
      `DELETE FROM proxy_reports WHERE spiffe_id = $1 AND instance <> $2 AND instance NOT IN
         (SELECT instance FROM proxy_reports WHERE spiffe_id = $1 AND instance <> $2 ORDER BY received_at_ms DESC, instance LIMIT $3)`,
      [r.spiffeId, r.instance, Math.max(0, keepPerId - 1)],
    );
  }

  async list(sinceMs: number, limit = DEFAULT_LIST_LIMIT, maxBytes = Number.MAX_SAFE_INTEGER): Promise<ProxyReport[]> {
    const sql = fairListSql(COLUMNS.split(', '), 'octet_length(served_json) + octet_length(denials_json)', '$1', '$2', '$3');
    return (await this.#db.query<Row>(sql, [sinceMs, maxBytes, limit])).rows.map(fromRow);
  }

  async prune(beforeMs: number): Promise<number> {
    return (await this.#db.query('DELETE FROM proxy_reports WHERE received_at_ms < $1', [beforeMs])).rowCount;
  }
}
