// Real ListenerDeps for listener unit tests: an empty identity store, a deny-by-default policy, real metrics on a
// fresh registry, the access log off, and one outbound HTTP listener's config on loopback.
import pino from 'pino';
import { systemClock } from '../../common/clock.js';
import { realTimers } from '../../shared-io/timers.js';
import { PolicyHolder } from '../../proxy/src/authz/policy-holder.js';
import { type ProxyConfig, parseProxyConfig } from '../../proxy/src/config/proxy-config.js';
import { IdentityStore } from '../../proxy/src/identity/identity-store.js';
import type { ListenerDeps } from '../../proxy/src/listeners/listener-deps.js';
import { createAccessLog, createRequestIds } from '../../proxy/src/telemetry/access-log.js';
import { createProxyRegistry, ProxyMetrics } from '../../proxy/src/telemetry/metrics.js';
import { DenyListHolder } from '../../proxy/src/tls/deny-list-holder.js';
import { ClientContexts, TicketKeys } from '../../proxy/src/tls/tls-contexts.js';

/** A proxy config with one outbound HTTP listener `out` on `listen`, its upstream a closed port; `limits`: YAML. */
export const outboundConfig = (listen = '127.0.0.1:0', limits = '{}'): ProxyConfig =>
  parseProxyConfig(
    `identity: { files: { certFile: /nonexistent/c.pem, keyFile: /nonexistent/k.pem, bundleFile: /nonexistent/b.pem } }
admin: { listen: 127.0.0.1:0 }
outbound:
  - { name: out, listen: ${listen}, upstream: 127.0.0.1:9, spiffeId: spiffe://example.org/ns/default/sa/api }
limits: ${limits}
`,
    '/test/proxy.yaml',
  );

export function listenerDeps(limits: ProxyConfig['limits'] = outboundConfig().limits, transport: ProxyConfig['transport'] = outboundConfig().transport): ListenerDeps {
  return {
    identity: new IdentityStore(systemClock),
    policies: new PolicyHolder('deny'),
    denyList: new DenyListHolder(),
    metrics: new ProxyMetrics(createProxyRegistry(), { defaultMetrics: false }),
    accessLog: createAccessLog({ destination: 'off', clock: systemClock }),
    tracer: null,
    limits,
    upgrades: new Set(outboundConfig().upgrades),
    transport,
    retryBufferBytes: outboundConfig().routing.retry.bufferBytes,
    ticketKeys: new TicketKeys(),
    clientContexts: new ClientContexts(),
    nowMs: () => Date.now(),
    timers: realTimers,
    requestId: createRequestIds(),
    log: pino({ level: 'silent' }),
  };
}
