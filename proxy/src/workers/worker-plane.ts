// The listeners of a proxy with `workers: N` (N > 1, docs/workers.md): N worker processes run them on shared ports,
// supervised by a WorkerPool, and get every snapshot the primary's holders take (identity, policies, deny-list,
// discovery) over IPC. What the admin listener shows of them (metrics, endpoints, listeners, denials) is gathered
// from the workers and merged.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { TesseraError } from '../../../common/errors.js';
import { readConfigText } from '../../../shared-io/read-named-file.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { DenialRow } from '../authz/denial-tally.js';
import type { PolicyHolder } from '../authz/policy-holder.js';
import type { ProxyConfig } from '../config/proxy-config.js';
import type { IdentityStore } from '../identity/identity-store.js';
import type { StartedListener } from '../listeners/listener-group.js';
import type { ListenerPlane } from '../listeners/listener-plane.js';
import { PortReservations } from '../listeners/port-reservations.js';
import type { ProxyRuntime } from '../proxy-runtime.js';
import type { ServiceDirectory } from '../routing/service-directory.js';
import type { DenyListHolder } from '../tls/deny-list-holder.js';
import { CounterCarry } from './counter-carry.js';
import { AggregatingRegistry, aggregateMetrics } from './metrics-aggregate.js';
import { encodeDenyList, encodeDirectory, encodeIdentity, encodePolicies } from './worker-messages.js';
import { WorkerPool } from './worker-pool.js';
import { mergeDenials, mergeEndpoints, mergeListeners, snapshotRefusalCounter, workerSlotCounter } from './worker-views.js';

/** Beyond the listeners' drain deadline, before a worker that has not exited is killed. */
const DRAIN_MARGIN_MS = 5_000;
/** How often the workers' denials are gathered once something reads them (the fleet report). */
const DENIALS_REFRESH_MS = 10_000;

export interface WorkerPlaneOptions {
  readonly config: ProxyConfig;
  /** The holders whose every snapshot goes to the workers. */
  readonly held: { readonly identity: IdentityStore; readonly policies: PolicyHolder; readonly denyList: DenyListHolder };
  /** The primary's own registry: the workers' metrics are summed with it. */
  readonly registry: Registry;
  readonly workerCommand: ProxyRuntime['workerCommand'];
  readonly env: NodeJS.ProcessEnv;
  readonly timers: Timers;
  readonly nowMs: () => number;
  readonly log: Logger;
}

export class WorkerPlane implements ListenerPlane {
  readonly readinessName = 'workers';
  readonly metrics: Registry;
  readonly #o: WorkerPlaneOptions;
  readonly #pool: WorkerPool;
  #denials: DenialRow[] = [];
  #denialsRefresh: unknown = null;
  /** The ports, bound (SO_REUSEPORT) by this primary before it attested, until the workers bind them too. */
  #reserved: PortReservations | undefined;

  constructor(o: WorkerPlaneOptions) {
    const { config, held, registry, workerCommand, timers } = o;
    if (!workerCommand) throw new TesseraError('TESSERA_ERR_PROXY_START_FAILED', 'workers > 1 needs the command that starts a listener worker (given by `tessera proxy`)');
    this.#o = o;
    const countRefusal = snapshotRefusalCounter(registry);
    this.#pool = new WorkerPool({
      count: config.workers,
      command: workerCommand.command,
      args: workerCommand.args,
      env: o.env,
      configFile: config.file,
      // The listener sections the workers run, read once here so that every worker and restart runs the same ones.
      configText: readConfigText({ path: config.file, what: 'config' }),
      drainGraceMs: config.limits.drainTimeoutMs + DRAIN_MARGIN_MS,
      timers,
      nowMs: o.nowMs,
      log: o.log,
      onRestart: workerSlotCounter(registry, config.workers, 'tessera_worker_restarts_total', 'Listener workers that exited unasked and were restarted by the primary, by worker slot.'),
      onRestartFailed: workerSlotCounter(registry, config.workers, 'tessera_worker_restart_failures_total', 'Restart attempts of a listener worker that failed before it listened (retried after the backoff), by worker slot.'),
      onHung: workerSlotCounter(registry, config.workers, 'tessera_worker_hangs_total', 'Listener workers killed (then restarted) because they stopped answering the primary, by worker slot.'),
      onRefused: (_slot, part) => countRefusal(part),
    });
    held.identity.subscribe((s) => this.#pool.publish({ identity: encodeIdentity(s) }));
    held.policies.subscribe(() => this.#pool.publish({ policies: encodePolicies(held.policies)! }));
    held.denyList.subscribe((list) => this.#pool.publish({ denyList: encodeDenyList(list) }));
    // What each worker slot last counted (and its earlier processes): the summed counters never go backwards.
    const carry = new CounterCarry();
    this.metrics = new AggregatingRegistry(async () => {
      const [own, all] = await Promise.all([registry.getMetricsAsJSON(), this.#pool.stats()]);
      return aggregateMetrics(own, all.map((s) => ({ slot: s.slot, pid: s.stats?.pid, metrics: s.stats?.metrics })), carry).metrics();
    });
  }

  readonly denials = {
    rows: (): DenialRow[] => {
      // Gathered on a schedule from the first read on: the reader (the fleet report) reads synchronously.
      this.#denialsRefresh ??= this.#o.timers.setInterval(() => void this.#pool.stats().then((all) => (this.#denials = mergeDenials(all))), DENIALS_REFRESH_MS);
      return this.#denials;
    },
  };

  notReadyReason(): string | undefined {
    return this.#pool.notReadyReason();
  }

  servedTarget(): { host: string; port: number } | undefined {
    const first = this.#o.config.inbound[0];
    const port = first && this.inboundPort(first.name);
    return first && port ? { host: first.listen.host, port } : undefined;
  }

  inboundPort(name: string): number | undefined {
    return this.#pool.ports[`inbound/${name}`];
  }

  async endpoints(): Promise<Record<string, unknown[]>> {
    return mergeEndpoints(await this.#pool.stats());
  }

  async describe(): Promise<Record<string, unknown>> {
    return { listeners: mergeListeners(await this.#pool.stats()), workers: this.#pool.describe() };
  }

  async reserve(): Promise<void> {
    this.#reserved = await PortReservations.bind(this.#o.config, { reusePort: true });
  }

  async start(directory: ServiceDirectory | undefined): Promise<StartedListener[]> {
    const { config, held } = this.#o;
    // Every change of any service is sent as the directory's whole state, at most once per turn.
    let queued = false;
    directory?.subscribeAll(() => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => {
        queued = false;
        const w = encodeDirectory(directory);
        if (w) this.#pool.publish({ directory: w });
      });
    });
    const directoryNow = directory ? encodeDirectory(directory) : undefined;
    const policiesNow = encodePolicies(held.policies);
    // The workers bind the reserved ports (a port 0 of the config as the reservation picked it); once they all
    // listen the primary lets its own sockets go (a connection the kernel gave one of them meanwhile was reset).
    await this.#pool
      .start({ identity: encodeIdentity(held.identity.current!), denyList: encodeDenyList(held.denyList.current), ...(policiesNow ? { policies: policiesNow } : {}), ...(directoryNow ? { directory: directoryNow } : {}) }, this.#reserved?.ports())
      .catch(async (e: unknown) => {
        await this.#pool.drain();
        throw e;
      })
      .finally(() => this.#releaseReserved());
    const ports = this.#pool.ports;
    return (['inbound', 'outbound', 'edge'] as const).flatMap((kind) => config[kind].map((c) => ({ kind, name: c.name, port: ports[`${kind}/${c.name}`] ?? c.listen.port })));
  }

  drain(): Promise<void> {
    return this.#pool.drain();
  }

  async close(): Promise<void> {
    if (this.#denialsRefresh !== null) this.#o.timers.clearInterval(this.#denialsRefresh);
    await this.#releaseReserved();
  }

  async #releaseReserved(): Promise<void> {
    const r = this.#reserved;
    this.#reserved = undefined;
    await r?.close();
  }
}
