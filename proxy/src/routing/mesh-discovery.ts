// The proxy's side of discovery as one part for main.ts: the ServiceDirectory fed by a DiscoveryWatch (when an
// outbound listener routes to services) and a RegistrationClient (when an inbound listener declares `service:`),
// both over the control-plane client (and so on the replica its shared endpoints name), reopened after each SVID
// rotation, logged and counted.
import type { Logger } from 'pino';
import type { BackoffOptions } from '../../../common/backoff.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { InboundConfig, OutboundConfig } from '../config/proxy-config.js';
import type { ControlPlaneClient } from '../identity/control-plane-client.js';
import type { ControlPlaneEndpoints } from '../identity/control-plane-endpoints.js';
import type { IssuedSvid } from '../identity/control-plane-svid-source.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import { DiscoveryWatch, watchedServicesOf } from './discovery-watch.js';
import { type PlannedRegistration, plannedRegistrations, RegistrationClient } from './registration-client.js';
import { ServiceDirectory } from './service-directory.js';

export interface MeshDiscoveryOptions {
  readonly inbound: readonly InboundConfig[];
  readonly outbound: readonly OutboundConfig[];
  readonly client: Pick<ControlPlaneClient, 'watchDiscovery' | 'register'>;
  readonly currentSvid: () => IssuedSvid | undefined;
  /** The client's replica picker: both streams reconnect after its full-jitter backoff (else `backoff`). */
  readonly endpoints?: Pick<ControlPlaneEndpoints, 'retryDelayMs'>;
  /** The streams reopen when the installed SVID's serial changes (the old one's calls end at its expiry). */
  readonly identity: Pick<IdentityStore, 'subscribe' | 'current'>;
  /** The port a listener actually bound (for `listen: …:0`). */
  readonly boundPort: (listener: string) => number | undefined;
  /** The proxy's readiness, registered with every endpoint (looked at every second, and on refresh()). */
  readonly ready: () => boolean;
  readonly metrics: Pick<ProxyMetrics, 'discoveryUpdate' | 'discoveryConnected' | 'discoveryLeftOut'>;
  readonly log: Logger;
  readonly timers?: Timers;
  readonly random?: () => number;
  /** Reconnect backoff of both streams (default: DEFAULT_RECONNECT_BACKOFF, 250 ms doubling to 15 s, ±30 %). */
  readonly backoff?: BackoffOptions;
}

export interface MeshDiscovery {
  /** Last-known endpoints per service (empty and never written when no listener routes to services). */
  readonly directory: ServiceDirectory;
  /** Absent when no outbound listener routes to a service. */
  readonly watch: DiscoveryWatch | undefined;
  /** Absent when no inbound listener declares `service:`, and until start() (it needs the bound ports). */
  readonly registration: RegistrationClient | undefined;
  start(): void;
  /** Readiness changed (or may have): send the registrations now instead of at the next look. */
  refresh(): void;
  /** SIGTERM, before draining: every registration ready=false; resolves when the control plane answered (≤ 2 s). */
  setDraining(): Promise<void>;
  /** Withdraws the registrations (≤ 2 s) and closes both streams. */
  stop(): Promise<void>;
}

export function createMeshDiscovery(o: MeshDiscoveryOptions): MeshDiscovery {
  const { log, metrics } = o;
  const directory = new ServiceDirectory({ onListenerError: (err, service) => log.error({ service, err: String(err) }, 'endpoint listener failed') });
  const watched = watchedServicesOf(o.outbound);
  const timers = o.timers ? { timers: o.timers } : {};
  const endpoints = o.endpoints;
  const retry = { ...(o.random ? { random: o.random } : {}), ...(o.backoff ? { backoff: o.backoff } : {}), ...(endpoints ? { retryDelayMs: (attempt: number) => endpoints.retryDelayMs(attempt) } : {}) };
  const watch = watched
    ? new DiscoveryWatch({
        open: (svid, req, cb) => o.client.watchDiscovery(svid, req, cb),
        currentSvid: o.currentSvid,
        directory,
        watched,
        ...timers,
        ...retry,
        onEvent: (e) => {
          if (e.kind === 'applied') {
            metrics.discoveryUpdate('applied');
            metrics.discoveryLeftOut(e.leftOut);
            log[e.full ? 'info' : 'debug']({ version: e.version, full: e.full, changed: e.changed.length }, 'discovery update applied');
          } else if (e.kind === 'refused') {
            metrics.discoveryUpdate('refused');
            log.warn({ version: e.version, err: e.error }, 'discovery update refused; the last endpoints stay');
          } else if (e.kind === 'over-cap') {
            log.warn({ code: 'TESSERA_ERR_DISCOVERY_OVER_CAP', version: e.version, kept: e.kept, leftOut: e.leftOut }, 'discovery view over the proxy\'s cap: own listeners\' services kept, the rest left out');
          } else if (e.kind === 'connected') {
            metrics.discoveryConnected(true);
          } else {
            metrics.discoveryConnected(false);
            log.warn({ err: e.error, retryInMs: e.retryInMs }, 'discovery stream disconnected; routing with the last endpoints');
          }
        },
      })
    : undefined;
  // Made at start(), once the listeners are bound: a listener on port 0 registers the port it got.
  const makeRegistration = (planned: PlannedRegistration[]) =>
    planned.length > 0
      ? new RegistrationClient({
          open: (svid, cb) => o.client.register(svid, cb),
          currentSvid: o.currentSvid,
          registrations: planned,
          ready: o.ready,
          ...timers,
          ...retry,
          onEvent: (e) => {
            if (e.kind === 'sent') log.info({ ready: e.ready, count: e.count }, 'registrations sent');
            else if (e.kind === 'answered') {
              if (e.refused.length > 0) log.warn({ refused: e.refused, accepted: e.accepted }, 'registrations refused by the control plane');
            } else log.warn({ err: e.error, retryInMs: e.retryInMs }, 'registration stream disconnected');
          },
        })
      : undefined;
  let registration: RegistrationClient | undefined;
  let serial: string | undefined;
  let unsubscribe: (() => void) | undefined;
  return {
    directory,
    watch,
    get registration() {
      return registration;
    },
    start() {
      if (unsubscribe) return;
      registration = makeRegistration(plannedRegistrations(o.inbound, o.boundPort));
      metrics.discoveryConnected(false);
      serial = o.identity.current?.serial;
      unsubscribe = o.identity.subscribe((s) => {
        if (serial !== undefined && s.serial !== serial) {
          watch?.restart();
          registration?.restart();
        }
        serial = s.serial;
      });
      watch?.start();
      registration?.start();
    },
    refresh: () => registration?.refresh(),
    setDraining: () => registration?.setDraining() ?? Promise.resolve(),
    async stop() {
      unsubscribe?.();
      watch?.stop();
      metrics.discoveryConnected(false);
      await registration?.stop();
    },
  };
}
