// One /metrics for a proxy with workers (docs/workers.md): the primary's own registry and each worker's
// `getMetricsAsJSON()` merged with prom-client's AggregatorRegistry. Traffic metrics (counters, histograms and
// connection gauges) are summed over the workers; the identity, policy and discovery side lives only in the
// primary, so those series are taken from it alone; per-worker series say which worker served what. The summed
// counters and histograms go through a CounterCarry so that a dead or slow worker does not make them go backwards.
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
import { CounterCarry } from './counter-carry.js';

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** Series only the primary updates (the workers register them too, at zero or at their own build labels). */
export const PRIMARY_ONLY: ReadonlySet<string> = new Set([
  'tessera_build_info',
  'tessera_svid_expiry_timestamp_seconds',
  'tessera_svid_rotations_total',
  'tessera_trust_bundle_updates_total',
  'tessera_policy_updates_total',
  'tessera_svid_served_checks_total',
  'tessera_discovery_connected',
  'tessera_discovery_updates_total',
  'tessera_workload_api_jwt_calls_total',
  'tessera_workload_api_calls_total',
  'tessera_control_plane_current',
  'tessera_control_plane_clock_offset_seconds',
  'tessera_control_plane_failovers_total',
  'tessera_control_plane_failbacks_total',
  'tessera_fleet_reports_total',
  'tessera_worker_restarts_total',
]);

/** Gauges each worker computes over the same endpoints (its own balancer's view): the largest count, not the sum. */
export const MAX_OVER_WORKERS: ReadonlySet<string> = new Set(['tessera_endpoints']);

/** One worker slot at scrape time: its metrics, or undefined when it did not answer (down, restarting, slow). */
export interface WorkerMetrics {
  readonly slot: number;
  readonly metrics: readonly unknown[] | undefined;
  /** The answering process: a new pid in a slot means its process was replaced (restarted). */
  readonly pid?: number | undefined;
}

const REQUESTS = 'tessera_requests_total';

function perWorker(workers: readonly WorkerMetrics[]): MetricJson[] {
  const requests = (m: readonly unknown[]) => (m as MetricJson[]).filter((x) => x.name === REQUESTS).reduce((n, x) => n + x.values.reduce((s, v) => s + v.value, 0), 0);
  const label = (w: WorkerMetrics) => ({ worker: String(w.slot) });
  return [
    { name: 'tessera_worker_up', help: 'Whether the worker answered this scrape (1) or not (0: down, restarting or slow), by worker slot.', type: 'gauge', aggregator: 'sum', values: workers.map((w) => ({ value: w.metrics ? 1 : 0, labels: label(w) })) },
    {
      name: 'tessera_worker_requests_total',
      help: 'tessera_requests_total of one worker process since it started, by worker slot (restarts at 0 with the worker).',
      type: 'counter',
      aggregator: 'sum',
      values: workers.filter((w) => w.metrics).map((w) => ({ value: requests(w.metrics!), labels: label(w) })),
    },
  ] as unknown as MetricJson[];
}

/**
 * The merged registry: render it with `.metrics()`. `primary` is the primary's own `getMetricsAsJSON()`; `carry`
 * lives as long as the primary (one scrape after another), so that the summed counters never decrease.
 */
export function aggregateMetrics(primary: readonly unknown[], workers: readonly WorkerMetrics[], carry = new CounterCarry()): Registry {
  const retag = (m: MetricJson): MetricJson => (MAX_OVER_WORKERS.has(m.name) ? { ...m, aggregator: 'max' } : m);
  const own = (primary as MetricJson[]).map(retag);
  const fromWorkers = workers.flatMap((w) => {
    const metrics = w.metrics && (w.metrics as MetricJson[]).filter((m) => !PRIMARY_ONLY.has(m.name)).map(retag);
    return carry.update(w.slot, w.pid, metrics);
  });
  return AggregatorRegistry.aggregate([[...own, ...perWorker(workers)], ...fromWorkers]);
}

/** A Registry whose text is produced by `render` (the admin server asks a Registry for `.metrics()`). */
export class AggregatingRegistry extends Registry {
  readonly #render: () => Promise<string>;

  constructor(render: () => Promise<string>) {
    super();
    this.#render = render;
  }

  override metrics(): Promise<string> {
    return this.#render();
  }
}
