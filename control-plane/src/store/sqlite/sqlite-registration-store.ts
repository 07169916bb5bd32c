// Self-registrations of the service registry in SQLite, one row per (Register session, service, endpoint
// address), with the owning registry and its heartbeat, so a restarted control plane can serve them (unconfirmed)
// while their proxies reconnect and register, and stale ones are swept in one statement.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { LoadedSession, StoredSession } from '../../discovery/service-registry.js';
import { REGISTRATION_COLUMNS, type RegistrationRow, registrationRow, sessionsFromRows } from '../registration-rows.js';
import type { RegistrationStore } from '../store-contract.js';

export class SqliteRegistrationStore implements RegistrationStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #all: StatementSync;
  readonly #heartbeat: StatementSync;
  readonly #removeStale: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare('INSERT OR REPLACE INTO registrations (session, spiffe_id, service, address, endpoint_json, updated_at_ms, owner) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#delete = db.prepare('DELETE FROM registrations WHERE session = ?');
    this.#all = db.prepare(`SELECT ${REGISTRATION_COLUMNS} FROM registrations ORDER BY session, service, address`);
    // The ids go in as one JSON array: one statement however many sessions the owner holds.
    this.#heartbeat = db.prepare('UPDATE registrations SET updated_at_ms = ? WHERE owner = ? AND session IN (SELECT value FROM json_each(?)) RETURNING session');
    this.#removeStale = db.prepare('DELETE FROM registrations WHERE updated_at_ms < ? RETURNING session');
  }

  async save(s: StoredSession, atMs: number, owner: string): Promise<void> {
    this.#db.exec('BEGIN');
    try {
      this.#delete.run(s.id);
      for (const r of s.registrations) {
        const row = registrationRow(r);
        this.#insert.run(s.id, s.spiffeId, r.service, row.address, row.endpointJson, atMs, owner);
      }
      this.#db.exec('COMMIT');
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  async remove(sessionId: string): Promise<void> {
    this.#delete.run(sessionId);
  }

  async loadAll(): Promise<LoadedSession[]> {
    return sessionsFromRows(this.#all.all() as unknown as RegistrationRow[]);
  }

  async heartbeat(owner: string, sessionIds: readonly string[], atMs: number): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const rows = this.#heartbeat.all(atMs, owner, JSON.stringify(sessionIds)) as { session: string }[];
    return [...new Set(rows.map((r) => r.session))];
  }

  async removeStale(beforeMs: number): Promise<number> {
    const rows = this.#removeStale.all(beforeMs) as { session: string }[];
    return new Set(rows.map((r) => r.session)).size;
  }
}
