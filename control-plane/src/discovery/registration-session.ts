// What the service registry keeps and persists (DESIGN.md section 11): a registration, a session as stored and as
// read back, and the persistence the store provides (where sessions survive a restart and meet other replicas').
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';

export interface Registration {
  readonly service: string;
  readonly endpoint: ServiceEndpoint;
}

/** A session as persisted: who registered what (the store's rows, grouped). */
export interface StoredSession {
  readonly id: string;
  readonly spiffeId: string;
  readonly registrations: readonly Registration[];
}

/** A session as read back: which registry owns it, and when that one last said it was alive. */
export interface LoadedSession extends StoredSession {
  readonly owner: string;
  readonly heartbeatAtMs: number;
}

/** Where sessions survive a restart and meet other replicas' (the store's RegistrationStore). */
export interface RegistrationPersistence {
  save(session: StoredSession, atMs: number, owner: string): Promise<void>;
  remove(sessionId: string): Promise<void>;
  loadAll(): Promise<LoadedSession[]>;
  /** Refreshes `owner`'s sessions listed; returns the ids that were still stored. */
  heartbeat(owner: string, sessionIds: readonly string[], atMs: number): Promise<string[]>;
  /** Deletes every session not heartbeaten since `beforeMs`; returns how many went. */
  removeStale(beforeMs: number): Promise<number>;
}
