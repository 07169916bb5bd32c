// The routing metrics: tessera_endpoints sums the views of every listener that balances a service (a service:
// listener and the forward proxy may both route `api`), and one listener closing leaves the other's counts; the
// endpoint label is capped.
import { expect, test } from 'vitest';
import { createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';
import { MAX_ENDPOINT_LABELS, RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';

const counts = (ready: number, ejected = 0) => ({ ready, ejected, draining: 0, not_ready: 0 });

test('tessera_endpoints adds up the listeners that balance one service; a listener gone takes only its own counts', async () => {
  const registry = createProxyRegistry();
  const m = new RoutingMetrics(registry);
  const a = {};
  const b = {};
  m.endpointStates(a, 'api', counts(3));
  m.endpointStates(b, 'api', counts(2, 1));
  m.endpointStates(a, 'api', counts(2, 1)); // replaces a's previous view, not added to it
  const ready = async () => sumSeries(await registry.metrics(), 'tessera_endpoints', { service: 'api', state: 'ready' });
  expect(await ready()).toBe(4);
  expect(sumSeries(await registry.metrics(), 'tessera_endpoints', { service: 'api', state: 'ejected' })).toBe(2);
  m.forgetService(a, 'api');
  expect(await ready()).toBe(2);
  m.forgetService(b, 'api');
  expect(await registry.metrics()).not.toContain('tessera_endpoints{service="api"');
});

test('per-endpoint series: past MAX_ENDPOINT_LABELS addresses, later ones share `other`', async () => {
  const registry = createProxyRegistry();
  const m = new RoutingMetrics(registry);
  for (let i = 0; i < MAX_ENDPOINT_LABELS + 5; i++) m.attempt('api', `10.0.${i >> 8}.${i & 255}:15006`, 'success');
  const text = await registry.metrics();
  expect(sumSeries(text, 'tessera_endpoint_requests_total', { endpoint: 'other' })).toBe(5);
  expect(sumSeries(text, 'tessera_endpoint_requests_total', { service: 'api' })).toBe(MAX_ENDPOINT_LABELS + 5);
});
