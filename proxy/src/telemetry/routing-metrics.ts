// The proxy's routing metrics (DESIGN.md section 11): endpoints per service and state, retries and ejections by
// reason, and per-endpoint requests and latency with capped cardinality (the first MAX_ENDPOINT_LABELS endpoint
// addresses keep their own series, later ones share `other`), recorded on the hot path through metric cells.
import { Gauge, type Registry } from 'prom-client';
import { CappedLabels, type Cell, cellCounter, cellHistogram, type HistCell, type LabelTable, str } from './metric-cells.js';

/** Distinct `service` label values kept before further ones are reported as `other`. */
export const MAX_SERVICE_LABELS = 100;
/** Distinct `endpoint` label values kept (over all services) before further ones are reported as `other`. */
export const MAX_ENDPOINT_LABELS = 200;

const ENDPOINT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STATES = ['ready', 'ejected', 'draining', 'not_ready'] as const;
export type EndpointState = (typeof STATES)[number];

export class RoutingMetrics {
  readonly #services = new CappedLabels(MAX_SERVICE_LABELS);
  readonly #endpoints = new CappedLabels(MAX_ENDPOINT_LABELS);
  /** Per service, each balancing listener's counts (two listeners may route one service): summed at scrape time. */
  readonly #states = new Map<string, Map<object, Record<EndpointState, number>>>();
  readonly #retries: LabelTable<Cell>;
  readonly #ejections: LabelTable<Cell>;
  readonly #requests: LabelTable<Cell>;
  readonly #seconds: LabelTable<HistCell>;

  constructor(registry: Registry) {
    const states = this.#states;
    new Gauge({
      name: 'tessera_endpoints',
      help: 'Endpoints of each routed service by state (ready, ejected, draining, not_ready).',
      labelNames: ['service', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [service, byOwner] of states) {
          for (const state of STATES) {
            let n = 0;
            for (const counts of byOwner.values()) n += counts[state];
            this.set({ service, state }, n);
          }
        }
      },
    });
    const service = ([s, ...rest]: readonly (string | number | boolean)[]) => [this.#services.label(String(s)), ...rest.map(String)];
    this.#retries = cellCounter(registry, 'tessera_retries_total', 'Requests sent again to another endpoint, by service and reason (connect_failed, identity_mismatch, pool_closed, queue_full, reset, status_5xx).', ['service', 'reason'], service).table;
    this.#ejections = cellCounter(registry, 'tessera_ejections_total', 'Endpoints ejected by outlier detection, by service and reason (consecutive_failures, identity_mismatch).', ['service', 'reason'], service).table;
    const endpoint = ([s, e, ...rest]: readonly (string | number | boolean)[]) => [this.#services.label(String(s)), this.#endpoints.label(String(e)), ...str(rest)];
    this.#requests = cellCounter(registry, 'tessera_endpoint_requests_total', 'Attempts per endpoint of a routed service by outcome (success, status_5xx, reset, connect_failed, identity_mismatch, cancelled).', ['service', 'endpoint', 'outcome'], endpoint).table;
    this.#seconds = cellHistogram(registry, 'tessera_endpoint_response_seconds', 'Time to the response head (HTTP) or to the connection (TCP) per endpoint of a routed service.', ['service', 'endpoint'], ENDPOINT_BUCKETS, endpoint);
  }

  /** `owner`'s (a listener's balancers) count of endpoints by state for `service`, replacing its previous one. */
  endpointStates(owner: object, service: string, counts: Readonly<Record<EndpointState, number>>): void {
    const label = this.#services.label(service);
    const byOwner = this.#states.get(label) ?? new Map<object, Record<EndpointState, number>>();
    byOwner.set(owner, { ...counts });
    this.#states.set(label, byOwner);
  }

  /** `owner` no longer routes `service` (its listener closed). */
  forgetService(owner: object, service: string): void {
    const label = this.#services.label(service);
    const byOwner = this.#states.get(label);
    byOwner?.delete(owner);
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
