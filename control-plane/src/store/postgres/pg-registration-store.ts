// Self-registrations of the service registry in PostgreSQL, one row per (session, service, endpoint address), with
// the replica that owns the session and its heartbeat, so any replica (or a restarted one) can serve them,
// unconfirmed, until their proxies register again, and a dead replica's sessions are swept by whichever replica
// runs the conditional DELETE first (the others delete nothing).
import type { LoadedSession, StoredSession } from '../../discovery/service-registry.js';
import { REGISTRATION_COLUMNS, type RegistrationRow, registrationRow, sessionsFromRows } from '../registration-rows.js';
import type { RegistrationStore } from '../store-contract.js';
import type { PgDatabase } from './pg-database.js';

export class PgRegistrationStore implements RegistrationStore {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async save(s: StoredSession, atMs: number, owner: string): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query('DELETE FROM registrations WHERE session = $1', [s.id]);
      for (const r of s.registrations) {
        const row = registrationRow(r);
        await q.query(
          `INSERT INTO registrations (session, spiffe_id, service, address, endpoint_json, updated_at_ms, owner) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (session, service, address) DO UPDATE SET spiffe_id = EXCLUDED.spiffe_id, endpoint_json = EXCLUDED.endpoint_json, updated_at_ms = EXCLUDED.updated_at_ms, owner = EXCLUDED.owner`,
          [s.id, s.spiffeId, r.service, row.address, row.endpointJson, atMs, owner],
        );
      }
    });
  }

  async remove(sessionId: string): Promise<void> {
    await this.#db.query('DELETE FROM registrations WHERE session = $1', [sessionId]);
  }

  /** Every stored session; a row that no longer reads as an endpoint is skipped (it would be refused today). */
  async loadAll(): Promise<LoadedSession[]> {
    return sessionsFromRows((await this.#db.query<RegistrationRow>(`SELECT ${REGISTRATION_COLUMNS} FROM registrations ORDER BY session, service, address`)).rows);
  }

  async heartbeat(owner: string, sessionIds: readonly string[], atMs: number): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const r = await this.#db.query<{ session: string }>('UPDATE registrations SET updated_at_ms = $3 WHERE owner = $1 AND session = ANY($2::TEXT[]) RETURNING session', [owner, sessionIds, atMs]);
    return [...new Set(r.rows.map((x) => x.session))];
  }

  // Row by row, a heartbeat that commits first is seen by the DELETE's recheck: a live session is never swept.
  async removeStale(beforeMs: number): Promise<number> {
    const r = await this.#db.query<{ session: string }>('DELETE FROM registrations WHERE updated_at_ms < $1 RETURNING session', [beforeMs]);
    return new Set(r.rows.map((x) => x.session)).size;
  }
}
