// What the proxy's control side (main.ts: identity, policies, admin, readiness, discovery, the Workload API, the
// fleet report) needs of whatever runs its listeners: this process (local-plane.ts) or N listener workers
// (workers/worker-plane.ts, `workers: N`). One seam, so that the control side is wired once, whatever the count.
import type { Registry } from 'prom-client';
import type { DenialTally } from '../authz/denial-tally.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import type { StartedListener } from './listener-group.js';

export interface ListenerPlane {
  /** The name of its readiness condition ("listeners", "workers"). */
  readonly readinessName: string;
  /** undefined once every listener serves, else why not. */
  notReadyReason(): string | undefined;
  /** What /metrics renders: the proxy's registry, or that summed with its workers'. */
  readonly metrics: Registry;
  /** Where the served-serial check connects: the first inbound listener, once bound. */
  servedTarget(): { host: string; port: number } | undefined;
  /** The bound port of an inbound listener (config port 0 is picked at start), for registration and the fleet report. */
  inboundPort(name: string): number | undefined;
  /** GET /endpoints: the balanced services' endpoints per listener. */
  endpoints(): unknown;
  /** The plane's part of GET /config: its listeners (and workers). */
  describe(): Promise<Record<string, unknown>>;
  /** Denials per policy, for the fleet report. */
  readonly denials: Pick<DenialTally, 'rows'>;
  /**
   * Binds every listener's address now, before the identity source attests, and holds it (resetting connections)
   * until start() serves on it. Throws TESSERA_ERR_PROXY_LISTEN_FAILED, holding nothing, when one cannot be bound.
   */
  reserve(): Promise<void>;
  /** Binds and serves; the identity is in. `directory` feeds `service:` routes. Closes what it bound if it fails. */
  start(directory: ServiceDirectory | undefined): Promise<StartedListener[]>;
  /** Stops accepting, lets in-flight exchanges finish up to the drain deadline, then closes the listeners. */
  drain(): Promise<void>;
  /** After drain: what the listeners shared (tracing, the access log, timers), and reserved ports not served. */
  close(): Promise<void>;
}
