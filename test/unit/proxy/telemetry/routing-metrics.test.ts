// The routing metrics: tessera_endpoints counts every endpoint of a service once, over every listener that balances
// it (a service: listener and the forward proxy may both route `api`), and one listener closing leaves the other's
// view; the endpoint label is capped.
import { expect, test } from 'vitest';
import type { DiscoveryUpdateMsg } from '../../../../common/contract/discovery-v1.js';
import { DEFAULT_ROUTING } from '../../../../proxy/src/config/routing-config.js';
import { ServiceBalancers } from '../../../../proxy/src/routing/service-balancers.js';
import { ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';
import { type EndpointState, MAX_ENDPOINT_LABELS, RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';
import { sumSeries } from '../../../helpers/prom-metrics.js';

const gauge = async (registry: ReturnType<typeof createProxyRegistry>, state: EndpointState, service = 'api') => sumSeries(await registry.metrics(), 'tessera_endpoints', { service, state });

test('tessera_endpoints counts each endpoint once over the listeners that balance one service; a listener gone takes only its own', async () => {
  const registry = createProxyRegistry();
  const m = new RoutingMetrics(registry);
  const a = {};
  const b = {};
  let aView: [string, EndpointState][] = [
    ['10.0.0.1:15006', 'ready'],
    ['10.0.0.2:15006', 'ready'],
    ['10.0.0.3:15006', 'ready'],
  ];
  m.endpointStates(a, 'api', () => aView);
  m.endpointStates(b, 'api', () => [
    ['10.0.0.1:15006', 'ready'],
    ['10.0.0.2:15006', 'ready'],
    ['10.0.0.3:15006', 'ejected'],
  ]);
  // Ready only where every listener would pick it: 10.0.0.3 is ejected by b.
  expect(await gauge(registry, 'ready')).toBe(2);
  expect(await gauge(registry, 'ejected')).toBe(1);
  // Read at scrape time: a's later view counts, not added to its earlier one.
  aView = [
    ['10.0.0.1:15006', 'ready'],
    ['10.0.0.2:15006', 'draining'],
  ];
  expect(await gauge(registry, 'ready')).toBe(1);
  expect(await gauge(registry, 'draining')).toBe(1);
  expect(await gauge(registry, 'ejected')).toBe(1);
  m.forgetService(b, 'api');
  expect(await gauge(registry, 'ready')).toBe(1);
  expect(await gauge(registry, 'ejected')).toBe(0);
  m.forgetService(a, 'api');
  expect(await registry.metrics()).not.toContain('tessera_endpoints{service="api"');
});

test('three replicas routed by two service listeners and a forward proxy: ready 3, not 9 (audit 19a F3)', async () => {
  const registry = createProxyRegistry();
  const metrics = new RoutingMetrics(registry);
  const directory = new ServiceDirectory();
  const update: DiscoveryUpdateMsg = {
    version: '1',
    full: true,
    services: [{ service: 'api', endpoints: ['127.0.0.2:15006', '127.0.0.3:15006', '127.0.0.4:15006'].map((address) => ({ address, spiffe_id: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 0, source: 'self' })) }],
    generated_at_unix_ms: '0',
  };
  directory.apply(update, { all: true });
  // One ServiceBalancers per listener, as the service: listeners and the http-proxy listener each keep their own.
  const listeners = [0, 1, 2].map(() => new ServiceBalancers<string>({ directory, routing: DEFAULT_ROUTING, headTimeoutMs: 60_000, create: (e) => `${e.host}:${e.port}`, retire: () => undefined, metrics, nowMs: () => 0, random: () => 0.5 }));
  for (const l of listeners) expect(l.route('api')).toBeDefined();
  expect(await gauge(registry, 'ready')).toBe(3);
  listeners[0]!.close();
  expect(await gauge(registry, 'ready')).toBe(3);
  for (const l of listeners.slice(1)) l.close();
  expect(await registry.metrics()).not.toContain('tessera_endpoints{service="api"');
});

test('services past the label cap share `other` and are counted apart', async () => {
  const registry = createProxyRegistry();
  const m = new RoutingMetrics(registry);
  const owner = {};
  for (let i = 0; i < 100; i++) m.endpointStates(owner, `s${i}`, () => [['10.0.0.1:1', 'ready']]);
  m.endpointStates(owner, 'late1', () => [['10.0.0.1:1', 'ready']]);
  m.endpointStates(owner, 'late2', () => [['10.0.0.1:1', 'ready']]);
  expect(await gauge(registry, 'ready', 'other')).toBe(2);
  m.forgetService(owner, 'late1');
  expect(await gauge(registry, 'ready', 'other')).toBe(1);
});

test('per-endpoint series: past MAX_ENDPOINT_LABELS addresses, later ones share `other`', async () => {
  const registry = createProxyRegistry();
  const m = new RoutingMetrics(registry);
  for (let i = 0; i < MAX_ENDPOINT_LABELS + 5; i++) m.attempt('api', `10.0.${i >> 8}.${i & 255}:15006`, 'success');
  const text = await registry.metrics();
  expect(sumSeries(text, 'tessera_endpoint_requests_total', { endpoint: 'other' })).toBe(5);
  expect(sumSeries(text, 'tessera_endpoint_requests_total', { service: 'api' })).toBe(MAX_ENDPOINT_LABELS + 5);
});
