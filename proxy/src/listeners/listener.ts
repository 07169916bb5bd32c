// What every listener kind (inbound HTTP/1 and HTTP/2, outbound HTTP/1 and HTTP/2, edge) offers the proxy around
// it, so start-up, ticket rotation, the served-serial check and graceful drain treat them alike.

import type { Server } from 'node:net';
import type { EndpointView } from '../routing/lease.js';

export type ListenerKind = 'inbound' | 'outbound' | 'edge';

export interface Listener {
  readonly kind: ListenerKind;
  readonly config: { readonly name: string; readonly listen: { readonly host: string } };
  /** The bound port (0 before start). */
  readonly port: number;
  /** Open connections (sessions) right now. */
  readonly openConnections: number;
  /** Binds its address, or takes over `bound`, the socket held for it since before the proxy attested. */
  start(bound?: Server): Promise<{ host: string; port: number }>;
  /** Stop accepting; open connections finish their exchange and close. */
  drain(): void;
  /** Resolves once no connection is open (at once when none is). */
  idle(): Promise<void>;
  /**
   * Everything still open is cut (its exchanges recorded as cut by the drain deadline). Resolves once the cut
   * connections have closed, i.e. their exchanges are recorded.
   */
  close(): Promise<void>;
  /** New session-ticket keys (listeners that issue tickets: the mTLS inbound ones). */
  rotateTicketKeys?(): void;
  /** The endpoints of the services it balances, by service (listeners routed to services). */
  endpoints?(): Record<string, readonly EndpointView[]>;
}
