// One /metrics over a primary and its workers: traffic counters and histograms are summed, the identity side
// comes from the primary alone, endpoint gauges take the largest worker view, and per-worker series say which
// worker served how much (0 for one that did not answer); the sums of counters never go backwards when a worker
// misses a scrape or is restarted.
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { ProxyMetrics } from '../../../../proxy/src/telemetry/metrics.js';
import { RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';
import { CounterCarry, MAX_CARRIED_SERIES } from '../../../../proxy/src/workers/counter-carry.js';
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

test('summed counters and histograms never decrease when a worker misses a scrape or is restarted; its gauges go', async () => {
  const primary = await json(proc().registry);
  const carry = new CounterCarry();
  const serve = (w: ReturnType<typeof proc>, n: number) => {
    for (let i = 0; i < n; i++) w.metrics.request('inbound', 'http', 200, 0.002, 'app', 'spiffe://example.org/ns/default/sa/web');
  };
  const w0 = proc();
  let w1 = proc();
  serve(w0, 51);
  serve(w1, 49);
  w1.metrics.connectionOpened('inbound');
  const scrape = async (second: { pid: number; metrics: Registry } | undefined) => {
    const workers = [{ slot: 0, pid: 100, metrics: await json(w0.registry) }, { slot: 1, pid: second?.pid, metrics: second ? await json(second.metrics) : undefined }];
    const text = await aggregateMetrics(primary, workers, carry).metrics();
    return {
      requests: sumSeries(text, 'tessera_requests_total'),
      count: sumSeries(text, 'tessera_request_duration_seconds_count'),
      inf: sumSeries(text, 'tessera_request_duration_seconds_bucket', { le: '+Inf' }),
      sum: sumSeries(text, 'tessera_request_duration_seconds_sum'),
      active: sumSeries(text, 'tessera_connections_active'),
      up: sumSeries(text, 'tessera_worker_up', { worker: '1' }),
    };
  };
  const before = await scrape({ pid: 101, metrics: w1.registry });
  expect(before).toMatchObject({ requests: 100, count: 100, inf: 100, active: 1, up: 1 });
  // Worker 1 stalls (SIGSTOP): its counters stay at what it last said; its open connection is not counted.
  expect(await scrape(undefined)).toMatchObject({ requests: 100, count: 100, inf: 100, sum: before.sum, active: 0, up: 0 });
  // Worker 1 is killed and restarted (a new pid, counting from 0): what the old process counted is kept.
  w1 = proc();
  serve(w1, 2);
  expect(await scrape({ pid: 202, metrics: w1.registry })).toMatchObject({ requests: 102, count: 102, inf: 102, active: 0, up: 1 });
  serve(w0, 1);
  serve(w1, 1);
  expect(await scrape({ pid: 202, metrics: w1.registry })).toMatchObject({ requests: 104, count: 104, inf: 104 });
  // A late answer of the old process (overlapping scrapes) is neither counted again nor allowed to lower the sums.
  const old = proc();
  serve(old, 49);
  expect(await scrape({ pid: 101, metrics: old.registry })).toMatchObject({ requests: 104, count: 104, inf: 104 });
});

test('what restarted processes counted is kept within MAX_CARRIED_SERIES series per slot, the sum unchanged', () => {
  const carry = new CounterCarry();
  const counter = (peers: number, from: number) => [
    { name: 'tessera_requests_total', help: 'h', type: 'counter', aggregator: 'sum', values: Array.from({ length: peers }, (_, i) => ({ value: 1, labels: { peer: `p${from + i}`, code: '200' } })) },
  ];
  const total = (parts: unknown[][]) => (parts.flat() as { values: { value: number }[] }[]).reduce((n, m) => n + m.values.reduce((s, v) => s + v.value, 0), 0);
  const series = (parts: unknown[][]) => (parts.flat() as { values: unknown[] }[]).reduce((n, m) => n + m.values.length, 0);
  // Each process admits its own first-come peers: three processes, each with MAX_CARRIED_SERIES / 2 others.
  const half = MAX_CARRIED_SERIES / 2;
  for (let pid = 1; pid <= 3; pid++) carry.update(0, pid, counter(half, pid * half));
  const parts = carry.update(0, 4, counter(1, 0));
  expect(total(parts)).toBe(3 * half + 1);
  const [, , offset] = parts;
  expect(series([offset!])).toBeLessThanOrEqual(MAX_CARRIED_SERIES + 1);
  expect((offset as { values: { labels: Record<string, string> }[] }[])[0]!.values.at(-1)!.labels).toEqual({ peer: 'other', code: 'other' });
});
