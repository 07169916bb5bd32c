// The listeners of this process (a proxy with one process, or one listener worker of `workers: N`), with what they
// share: the access log, tracing (started once the identity is in, for its SPIFFE ID) and the TLS ticket keys,
// rotated on a schedule. Started as one group, drained until idle or the deadline, then closed.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../common/clock.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { DenialTally } from '../authz/denial-tally.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import { type AccessLog, accessLogReports, createAccessLog } from '../telemetry/access-log.js';
import { countAccessLogDrops } from '../telemetry/access-log-metrics.js';
import { startTracing } from '../telemetry/start-tracing.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import { TicketKeys } from '../tls/tls-contexts.js';
import { type ListenerDeps, type ListenerHolders, listenerDeps } from './listener-deps.js';
import { ListenerGroup, type StartedListener } from './listener-group.js';
import type { ListenerPlane } from './listener-plane.js';
import { makeListeners } from './make-listeners.js';
import { PortReservations } from './port-reservations.js';

export interface LocalPlaneOptions {
  readonly config: ProxyConfig;
  /** The holders the composition root feeds (identity, policies, deny-list) and its metrics. */
  readonly held: Pick<ListenerHolders, 'identity' | 'policies' | 'denyList' | 'metrics'>;
  readonly registry: Registry;
  readonly clock: Clock;
  /** The listeners' clock (ListenerDeps' nowMs): a sub-millisecond one times exchanges finely. Absent: `clock`. */
  readonly exchangeClock?: Clock;
  readonly timers: Timers;
  readonly log: Logger;
  /** The process environment: standard OTEL_* variables configure tracing where the config does not. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** A listener worker: its siblings write the access log to the same stdout. */
  readonly sharedAccessLog?: boolean;
  /** A listener worker: edge certificate sets go to, and at start come from, the primary. */
  readonly edgeCertificates?: ListenerDeps['edgeCertificates'];
}

export class LocalPlane implements ListenerPlane {
  readonly readinessName = 'listeners';
  readonly #o: LocalPlaneOptions;
  readonly #group: ListenerGroup;
  readonly #accessLog: AccessLog;
  #tally: DenialTally | undefined;
  #tracer: RequestTracer | null = null;
  #rotation: { stop(): void } | undefined;
  /** The listeners' sockets, bound by reserve() before the proxy attested; each listener takes its own at start. */
  #reserved: PortReservations | undefined;
  #up = false;

  constructor(o: LocalPlaneOptions) {
    this.#o = o;
    this.#group = new ListenerGroup(o.timers);
    // Opened here, so that a bad access-log path fails start-up before anything listens.
    this.#accessLog = createAccessLog({ destination: o.config.telemetry.accessLog, clock: o.clock, ...(o.sharedAccessLog ? { sharedDestination: true } : {}), ...accessLogReports(o.log) });
    countAccessLogDrops(o.registry, this.#accessLog);
  }

  get metrics(): Registry {
    return this.#o.registry;
  }

  readonly denials: Pick<DenialTally, 'rows'> = { rows: () => this.#tally?.rows() ?? [] };

  notReadyReason(): string | undefined {
    return this.#up ? undefined : 'listeners starting';
  }

  servedTarget(): { host: string; port: number } | undefined {
    return this.#group.servedTarget();
  }

  inboundPort(name: string): number | undefined {
    return this.#group.portOf('inbound', name);
  }

  endpoints(): ReturnType<ListenerGroup['endpoints']> {
    return this.#group.endpoints();
  }

  /** The listeners with their bound port and open connections. */
  listeners(): ReturnType<ListenerGroup['describe']> {
    return this.#group.describe();
  }

  async describe(): Promise<Record<string, unknown>> {
    return { listeners: this.#group.describe() };
  }

  async reserve(): Promise<void> {
    this.#reserved = await PortReservations.bind(this.#o.config);
  }

  async start(directory: ServiceDirectory | undefined): Promise<StartedListener[]> {
    const { config, held, registry, timers, log } = this.#o;
    const id = held.identity.current!.id;
    this.#tracer = await startTracing(config.telemetry.tracing, this.#o.env, id, log, registry);
    // Each process issues and rotates its own tickets. In a listener worker, a resumed session carries only the
    // peer's leaf, its chain completed from intermediates this worker saw in a full handshake: a ticket from another
    // worker fails to decrypt here and the peer makes a full handshake, instead of being refused for a short chain.
    const ticketKeys = new TicketKeys();
    const listenerClock = this.#o.exchangeClock ?? this.#o.clock;
    const nowMs = () => listenerClock.nowMs();
    const common = await listenerDeps(config, { ...held, accessLog: this.#accessLog, tracer: this.#tracer, ticketKeys, nowMs, timers, log }, directory ? { directory, registry, timers } : undefined);
    this.#tally = common.denials;
    const deps = this.#o.edgeCertificates ? { ...common, edgeCertificates: this.#o.edgeCertificates } : common;
    const started = await this.#group.start(await makeListeners(config, deps), this.#reserved);
    this.#rotation = this.#group.rotateTicketKeysEvery(ticketKeys, config.limits.ticketKeyRotationMs);
    this.#up = true;
    return started;
  }

  async drain(): Promise<void> {
    this.#rotation?.stop();
    await this.#group.drainAndClose(this.#o.config.limits.drainTimeoutMs);
  }

  async close(): Promise<void> {
    await this.#reserved?.close();
    await this.#tracer?.shutdown();
    await this.#accessLog.close();
  }
}
