// The balancers of one outbound listener, one per service it routes to: made on first use, fed by the service
// directory (discovery) and dropped never (a service that loses its endpoints keeps an empty balancer, so its
// callers get 503 no_endpoints, not an unknown service). Each endpoint gets its own resource (a connection pool, an
// HTTP/2 upstream) made by the listener's factory; a removed endpoint's resource is drained.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import type { RoutingSettings } from '../config/routing-config.js';
import type { RoutingMetrics } from '../telemetry/routing-metrics.js';
import { EndpointBalancer } from './endpoint-balancer.js';
import type { RouteDeps } from './exchange-route.js';
import type { EndpointView } from './lease.js';
import { RetryBudget } from './retry-budget.js';
import type { ServiceDirectory } from './service-directory.js';

/** Services one forward-proxy listener balances at most (each holds pools): more are answered unknown_service. */
export const MAX_SERVICES_PER_LISTENER = 256;

export interface ServiceBalancersOptions<R> {
  readonly directory: ServiceDirectory;
  readonly routing: RoutingSettings;
  /** limits.requestTimeout: the head deadline every route's attempts share (RouteDeps.headTimeoutMs). */
  readonly headTimeoutMs: number;
  /** The resource of one endpoint (its pool); `retire` drains it once the endpoint is gone. */
  readonly create: (endpoint: ServiceEndpoint) => R;
  readonly retire: (resource: R) => void;
  readonly metrics: RoutingMetrics;
  readonly nowMs: () => number;
  readonly random: () => number;
}

interface Entry<R> {
  readonly balancer: EndpointBalancer<R>;
  readonly route: RouteDeps<R>;
  readonly unsubscribe: () => void;
}

export class ServiceBalancers<R> {
  readonly #o: ServiceBalancersOptions<R>;
  readonly #entries = new Map<string, Entry<R>>();

  constructor(opts: ServiceBalancersOptions<R>) {
    this.#o = opts;
  }

  /**
   * What a request to `service` routes with; undefined when discovery has never heard of the service (or the
   * listener already balances MAX_SERVICES_PER_LISTENER others).
   */
  /** Whether `service` is balanced here (it had endpoints once: it stays known when it loses them all). */
  has(service: string): boolean {
    return this.#entries.has(service);
  }

  route(service: string): RouteDeps<R> | undefined {
    const e = this.#entries.get(service);
    if (e) return e.route;
    if (this.#o.directory.get(service) === undefined || this.#entries.size >= MAX_SERVICES_PER_LISTENER) return undefined;
    return this.#open(service).route;
  }

  /** Starts balancing `service` now (a listener routed to one service), whether or not it has endpoints yet. */
  open(service: string): RouteDeps<R> {
    return this.#entries.get(service)?.route ?? this.#open(service).route;
  }

  /** Every endpoint's resource, draining ones included (the listener's sweep closes idle connections). */
  *resources(): Iterable<R> {
    for (const e of this.#entries.values()) yield* e.balancer.resources();
  }

  /** For the /endpoints admin view. */
  views(): Record<string, EndpointView[]> {
    const out: Record<string, EndpointView[]> = {};
    for (const [service, e] of this.#entries) out[service] = e.balancer.views();
    return out;
  }

  close(): void {
    for (const [service, e] of this.#entries) {
      e.unsubscribe();
      e.balancer.close();
      this.#o.metrics.forgetService(this, service);
    }
    this.#entries.clear();
  }

  #open(service: string): Entry<R> {
    const o = this.#o;
    const m = o.metrics;
    const balancer = new EndpointBalancer<R>({
      service,
      settings: o.routing,
      nowMs: o.nowMs,
      random: o.random,
      failurePenaltyCapMs: o.headTimeoutMs,
      create: o.create,
      retire: o.retire,
      onEjected: (_address, reason) => m.ejected(service, reason),
    });
    m.endpointStates(this, service, () => balancer.states());
    const feed = () => balancer.update(o.directory.get(service) ?? []);
    const unsubscribe = o.directory.subscribe(service, feed);
    feed();
    const route: RouteDeps<R> = {
      service,
      pick: (exclude) => balancer.pick(exclude),
      budget: new RetryBudget(o.routing.retry, o.nowMs),
      retry: o.routing.retry,
      headTimeoutMs: o.headTimeoutMs,
      nowMs: o.nowMs,
      random: o.random,
      onRetry: (s, reason) => m.retried(s, reason),
      onAttempt: (s, address, outcome) => m.attempt(s, address, outcome),
      onLatency: (s, address, seconds) => m.latency(s, address, seconds),
    };
    const entry = { balancer, route, unsubscribe };
    this.#entries.set(service, entry);
    return entry;
  }
}
