// Self-registrations of the service registry, one row per (Register session, service, endpoint address), so a
// restarted control plane can serve them (unconfirmed) while their proxies reconnect and register again.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { EndpointMsg } from '../../../common/contract/discovery-v1.js';
import { endpointAddress, endpointFromWire, endpointToWire, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { RegistrationPersistence, StoredSession } from '../discovery/service-registry.js';

interface Row {
  session: string;
  spiffe_id: string;
  service: string;
  endpoint_json: string;
}

export class RegistrationStore implements RegistrationPersistence {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #all: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare('INSERT OR REPLACE INTO registrations (session, spiffe_id, service, address, endpoint_json, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)');
    this.#delete = db.prepare('DELETE FROM registrations WHERE session = ?');
    this.#all = db.prepare('SELECT session, spiffe_id, service, endpoint_json FROM registrations ORDER BY session, service, address');
  }

  /** Replaces what is stored for the session with its current set, in one transaction. */
  save(s: StoredSession, atMs: number): void {
    this.#db.exec('BEGIN');
    try {
      this.#delete.run(s.id);
      for (const r of s.registrations) this.#insert.run(s.id, s.spiffeId, r.service, endpointAddress(r.endpoint), JSON.stringify(endpointToWire(r.endpoint)), atMs);
      this.#db.exec('COMMIT');
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  remove(sessionId: string): void {
    this.#delete.run(sessionId);
  }

  /** Every stored session; a row that no longer reads as an endpoint is skipped (it would be refused today). */
  loadAll(): StoredSession[] {
    const sessions = new Map<string, { id: string; spiffeId: string; registrations: StoredSession['registrations'][number][] }>();
    for (const r of this.#all.all() as unknown as Row[]) {
      let endpoint: ServiceEndpoint;
      try {
        endpoint = endpointFromWire(JSON.parse(r.endpoint_json) as EndpointMsg, (id) => SpiffeId.tryParse(id).ok);
      } catch {
        continue;
      }
      const s = sessions.get(r.session) ?? { id: r.session, spiffeId: r.spiffe_id, registrations: [] };
      sessions.set(r.session, s);
      s.registrations.push({ service: r.service, endpoint });
    }
    return [...sessions.values()];
  }
}
