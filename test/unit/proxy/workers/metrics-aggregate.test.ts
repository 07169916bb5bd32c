// One /metrics over a primary and its workers: traffic counters and histograms are summed, the identity side
// comes from the primary alone, endpoint gauges take the largest worker view, and per-worker series say which
// worker served how much (0 for one that did not answer).
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';
import { RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';
import { aggregateMetrics } from '../../../../proxy/src/workers/metrics-aggregate.js';
import { mergeDenials, mergeListeners } from '../../../../proxy/src/workers/worker-views.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';

const build = { version: '1.2.3', node: '24', openssl: '3' };

function proc(): { registry: Registry; metrics: ProxyMetrics } {
  const registry = new Registry();
  return { registry, metrics: new ProxyMetrics(registry, { build, defaultMetrics: false }) };
}

/** Through JSON, as node's IPC channel carries a worker's getMetricsAsJSON(). */
const json = async (r: Registry) => JSON.parse(JSON.stringify(await r.getMetricsAsJSON())) as unknown[];

test('counters and histograms are summed; the identity side is the primary’s; each worker is shown', async () => {
  const primary = proc();
  primary.metrics.svidExpiry(2_000_000_000_000);
  primary.metrics.svidRotation('success');
  const workers = [proc(), proc()];
  const served = [3, 5];
  workers.forEach((w, i) => {
    for (let n = 0; n < served[i]!; n++) w.metrics.request('inbound', 'http', 200, 0.002, 'app', 'spiffe://example.org/ns/default/sa/web');
    w.metrics.svidExpiry(1); // a worker's own view of it must not leak into the sum
  });
  const text = await aggregateMetrics(await json(primary.registry), [
    { slot: 0, metrics: await json(workers[0]!.registry) },
    { slot: 1, metrics: await json(workers[1]!.registry) },
    { slot: 2, metrics: undefined },
  ]).metrics();
  expect(sumSeries(text, 'tessera_requests_total', { direction: 'inbound', code: '200' })).toBe(8);
  expect(sumSeries(text, 'tessera_request_duration_seconds_count')).toBe(8);
  expect(sumSeries(text, 'tessera_request_duration_seconds_bucket', { le: '+Inf' })).toBe(8);
  expect(sumSeries(text, 'tessera_svid_expiry_timestamp_seconds')).toBe(2_000_000_000);
  expect(sumSeries(text, 'tessera_svid_rotations_total', { result: 'success' })).toBe(1);
  expect(sumSeries(text, 'tessera_build_info')).toBe(1);
  expect(sumSeries(text, 'tessera_worker_requests_total', { worker: '0' })).toBe(3);
  expect(sumSeries(text, 'tessera_worker_requests_total', { worker: '1' })).toBe(5);
  expect(text).not.toContain('tessera_worker_requests_total{worker="2"}');
  expect(sumSeries(text, 'tessera_worker_up', { worker: '1' })).toBe(1);
  expect(sumSeries(text, 'tessera_worker_up', { worker: '2' })).toBe(0);
});

test('endpoint gauges take the largest worker view instead of multiplying by the worker count', async () => {
  const primary = proc();
  const views = [proc(), proc()].map((w) => ({ ...w, routing: new RoutingMetrics(w.registry) }));
  for (const v of views) v.routing.endpointStates(v, 'api', () => [['10.0.0.1:1', 'ready'], ['10.0.0.2:1', 'ready'], ['10.0.0.3:1', 'not_ready']]);
  views[1]!.routing.endpointStates(views[1]!, 'api', () => [['10.0.0.1:1', 'ready'], ['10.0.0.2:1', 'ejected'], ['10.0.0.3:1', 'not_ready']]);
  const regs = [await json(views[0]!.registry), await json(views[1]!.registry)];
  const text = await aggregateMetrics(await json(primary.registry), regs.map((metrics, slot) => ({ slot, metrics }))).metrics();
  expect(sumSeries(text, 'tessera_endpoints', { service: 'api', state: 'ready' })).toBe(2);
  expect(sumSeries(text, 'tessera_endpoints', { service: 'api', state: 'ejected' })).toBe(1);
  expect(sumSeries(text, 'tessera_endpoints', { service: 'api', state: 'not_ready' })).toBe(1);
});

test('listeners sum their open connections and denials merge by policy and outcome', () => {
  const stats = (open: number, denials: { policy: string; count: number; lastAtMs: number; lastCaller: string }[]) => ({
    pid: 1,
    metrics: [],
    listeners: [{ name: 'app', port: 4000, open }],
    endpoints: {},
    denials: denials.map((d) => ({ ...d, outcome: 'deny' as const })),
  });
  const all = [
    { slot: 0, stats: stats(2, [{ policy: 'p', count: 2, lastAtMs: 10, lastCaller: 'spiffe://a/x' }]) },
    { slot: 1, stats: stats(3, [{ policy: 'p', count: 1, lastAtMs: 20, lastCaller: 'spiffe://a/y' }, { policy: 'q', count: 4, lastAtMs: 5, lastCaller: 'spiffe://a/z' }]) },
    { slot: 2, stats: undefined },
  ];
  expect(mergeListeners(all)).toEqual([{ name: 'app', port: 4000, open: 5 }]);
  expect(mergeDenials(all)).toEqual([
    { policy: 'p', outcome: 'deny', count: 3, lastAtMs: 20, lastCaller: 'spiffe://a/y' },
    { policy: 'q', outcome: 'deny', count: 4, lastAtMs: 5, lastCaller: 'spiffe://a/z' },
  ]);
});
