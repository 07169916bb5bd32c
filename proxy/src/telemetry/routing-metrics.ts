// The proxy's routing metrics (DESIGN.md section 11): endpoints per service and state (each endpoint once over
// the listeners that route it), retries and ejections by reason, and per-endpoint requests and latency with capped
// cardinality (the first MAX_ENDPOINT_LABELS endpoint addresses keep their own series, later ones share `other`),
// recorded on the hot path through metric cells.
import { Gauge, type Registry } from 'prom-client';
import { CappedLabels, type Cell, cellCounter, cellHistogram, type HistCell, type LabelTable, str } from './metric-cells.js';

/** Distinct `service` label values kept before further ones are reported as `other`. */
export const MAX_SERVICE_LABELS = 100;
/** Distinct `endpoint` label values kept (over all services) before further ones are reported as `other`. */
export const MAX_ENDPOINT_LABELS = 200;

const ENDPOINT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STATES = ['ready', 'ejected', 'draining', 'not_ready'] as const;
export type EndpointState = (typeof STATES)[number];
/** A listener's endpoints of one service, each with its state there, read at scrape time. */
export type EndpointStates = () => Iterable<readonly [address: string, state: EndpointState]>;

/**
 * Which state an endpoint that listeners see differently is counted in: `ready` only when every listener that
 * routes its service would pick it; otherwise the first of draining (leaving discovery), not_ready (the registry
 * says so), ejected (some listener's outlier detection) any of them sees. Higher wins.
 */
const RANK: Readonly<Record<EndpointState, number>> = { ready: 0, ejected: 1, not_ready: 2, draining: 3 };

export class RoutingMetrics {
  readonly #services = new CappedLabels(MAX_SERVICE_LABELS);
  readonly #endpoints = new CappedLabels(MAX_ENDPOINT_LABELS);
  /**
   * Per service, each balancing listener's endpoint states (two listeners may route one service): at scrape time
   * every distinct endpoint is counted once, in the state RANK chooses. Keyed by label, owner, then service (the
   * services past the cap share the label `other`).
   */
  readonly #states = new Map<string, Map<object, Map<string, EndpointStates>>>();
  readonly #retries: LabelTable<Cell>;
  readonly #ejections: LabelTable<Cell>;
  readonly #requests: LabelTable<Cell>;
  readonly #seconds: LabelTable<HistCell>;

  constructor(registry: Registry) {
    const states = this.#states;
    new Gauge({
      name: 'tessera_endpoints',
      help: 'Endpoints of each routed service by state (ready, ejected, draining, not_ready), each endpoint counted once over listeners.',
      labelNames: ['service', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [service, byOwner] of states) {
          const merged = new Map<string, EndpointState>();
          for (const byService of byOwner.values()) {
            for (const [name, read] of byService) {
              for (const [address, state] of read()) {
                const key = `${name} ${address}`;
                const seen = merged.get(key);
                if (seen === undefined || RANK[state] > RANK[seen]) merged.set(key, state);
              }
            }
          }
          const counts: Record<EndpointState, number> = { ready: 0, ejected: 0, draining: 0, not_ready: 0 };
          for (const state of merged.values()) counts[state]++;
          for (const state of STATES) this.set({ service, state }, counts[state]);
        }
      },
    });
    const service = ([s, ...rest]: readonly (string | number | boolean)[]) => [this.#services.label(String(s)), ...rest.map(String)];
    this.#retries = cellCounter(registry, 'tessera_retries_total', 'Requests sent again to another endpoint, by service and reason (connect_failed, identity_mismatch, pool_closed, queue_full, reset, bad_response, status_5xx; refused: the same endpoint, on another session).', ['service', 'reason'], service).table;
    this.#ejections = cellCounter(registry, 'tessera_ejections_total', 'Endpoints ejected by outlier detection, by service and reason (consecutive_failures, identity_mismatch).', ['service', 'reason'], service).table;
    const endpoint = ([s, e, ...rest]: readonly (string | number | boolean)[]) => [this.#services.label(String(s)), this.#endpoints.label(String(e)), ...str(rest)];
    this.#requests = cellCounter(registry, 'tessera_endpoint_requests_total', 'Attempts per endpoint of a routed service by outcome (success, status_5xx, bad_response, timeout, reset, connect_failed, identity_mismatch, cancelled).', ['service', 'endpoint', 'outcome'], endpoint).table;
    this.#seconds = cellHistogram(registry, 'tessera_endpoint_response_seconds', 'Time to the response head (HTTP) or to the connection (TCP) per endpoint of a routed service.', ['service', 'endpoint'], ENDPOINT_BUCKETS, endpoint);
  }

  /** `owner` (a listener's balancers) routes `service`: `read` gives its endpoints' states at scrape time. */
  endpointStates(owner: object, service: string, read: EndpointStates): void {
    const label = this.#services.label(service);
    const byOwner = this.#states.get(label) ?? new Map<object, Map<string, EndpointStates>>();
    const byService = byOwner.get(owner) ?? new Map<string, EndpointStates>();
    byService.set(service, read);
    byOwner.set(owner, byService);
    this.#states.set(label, byOwner);
  }

  /** `owner` no longer routes `service` (its listener closed). */
  forgetService(owner: object, service: string): void {
    const label = this.#services.label(service);
    const byOwner = this.#states.get(label);
    const byService = byOwner?.get(owner);
    byService?.delete(service);
    if (byService?.size === 0) byOwner!.delete(owner);
    if (byOwner?.size === 0) this.#states.delete(label);
  }

  retried(service: string, reason: string): void {
    this.#retries.get2(service, reason).n++;
  }

  ejected(service: string, reason: string): void {
    this.#ejections.get2(service, reason).n++;
  }

  attempt(service: string, endpoint: string, outcome: string): void {
    this.#requests.get3(service, endpoint, outcome).n++;
  }

  latency(service: string, endpoint: string, seconds: number): void {
    this.#seconds.get2(service, endpoint).observe(seconds);
  }
}
