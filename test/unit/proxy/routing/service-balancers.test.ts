// ServiceBalancers: a service stays known to its listener once balanced, also after discovery drops its last
// endpoint, so a forward-proxy caller gets 503 no_endpoints for it, not unknown_service (audit 9b F4).
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg } from '../../../../common/contract/discovery-v1.js';
import { DEFAULT_ROUTING } from '../../../../proxy/src/config/routing-config.js';
import { ExchangeRoute } from '../../../../proxy/src/routing/exchange-route.js';
import { ServiceBalancers } from '../../../../proxy/src/routing/service-balancers.js';
import { ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { serviceOfHost } from '../../../../proxy/src/routing/service-host.js';
import { RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';

const update = (version: number, endpoints: string[]): DiscoveryUpdateMsg => ({
  version: String(version),
  full: true,
  services: endpoints.length ? [{ service: 'api', endpoints: endpoints.map((address) => ({ address, spiffe_id: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 0, source: 'self' })) }] : [],
  generated_at_unix_ms: '0',
});

describe('ServiceBalancers', () => {
  test('a service that lost its last endpoint is still known (no_endpoints); one never heard of is not', () => {
    const directory = new ServiceDirectory();
    const pools = new ServiceBalancers<string>({ directory, routing: DEFAULT_ROUTING, headTimeoutMs: 60_000, create: (e) => `${e.host}:${e.port}`, retire: () => undefined, metrics: new RoutingMetrics(new Registry()), nowMs: () => 0, random: () => 0.5 });
    // As the forward-proxy listener asks: the directory, or a service it balanced before.
    const known = (name: string) => directory.get(name) !== undefined || pools.has(name);
    directory.apply(update(1, ['127.0.0.2:15006']), { all: true });
    expect(serviceOfHost('api', known)).toBe('api');
    const deps = pools.route('api')!;
    expect(ExchangeRoute.open(deps)).not.toBeNull();
    directory.apply(update(2, []), { all: true });
    expect(directory.get('api')).toBeUndefined();
    expect(serviceOfHost('api', known)).toBe('api');
    expect(ExchangeRoute.open(pools.route('api')!)).toBeNull(); // 503 no_endpoints
    expect(serviceOfHost('db', known)).toBeNull(); // 503 unknown_service
    expect(pools.has('db')).toBe(false);
  });
});
