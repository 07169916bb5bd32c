// How a self-registration is kept in a table, for every store implementation: the endpoint's address (part of
// the key) and its wire form as JSON, with the session's owner and heartbeat on every row; rows read back are
// grouped into sessions, and a row that no longer reads as an endpoint is skipped (it would be refused today).
import type { EndpointMsg } from '../../../common/contract/discovery-v1.js';
import { endpointAddress, endpointFromWire, endpointToWire, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { LoadedSession, Registration } from '../discovery/service-registry.js';

export interface RegistrationRow {
  readonly session: string;
  readonly spiffe_id: string;
  readonly service: string;
  readonly endpoint_json: string;
  readonly owner: string;
  readonly updated_at_ms: number;
}

/** The columns sessionsFromRows reads, in its order. */
export const REGISTRATION_COLUMNS = 'session, spiffe_id, service, endpoint_json, owner, updated_at_ms';

export function registrationRow(r: Registration): { address: string; endpointJson: string } {
  return { address: endpointAddress(r.endpoint), endpointJson: JSON.stringify(endpointToWire(r.endpoint)) };
}

/** Rows in (session, service, address) order → sessions; a session's heartbeat is its newest row's. */
export function sessionsFromRows(rows: readonly RegistrationRow[]): LoadedSession[] {
  const sessions = new Map<string, { id: string; spiffeId: string; owner: string; heartbeatAtMs: number; registrations: Registration[] }>();
  for (const r of rows) {
    let endpoint: ServiceEndpoint;
    try {
      endpoint = endpointFromWire(JSON.parse(r.endpoint_json) as EndpointMsg, (id) => SpiffeId.tryParse(id).ok);
    } catch {
      continue;
    }
    const s = sessions.get(r.session) ?? { id: r.session, spiffeId: r.spiffe_id, owner: r.owner, heartbeatAtMs: Number(r.updated_at_ms), registrations: [] };
    sessions.set(r.session, s);
    s.heartbeatAtMs = Math.max(s.heartbeatAtMs, Number(r.updated_at_ms));
    s.registrations.push({ service: r.service, endpoint });
  }
  return [...sessions.values()];
}
