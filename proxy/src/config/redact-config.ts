// The effective config as /config shows it: paths and settings, never token values.
import type { ProxyConfig } from './proxy-config.js';

export function redactedConfig(config: ProxyConfig): Record<string, unknown> {
  const identity = config.identity.kind === 'controlPlane' && config.identity.joinToken ? { ...config.identity, joinToken: '<redacted>' } : config.identity;
  return {
    ...config,
    identity,
    inbound: config.inbound.map((l) => ({ ...l, listen: `${l.listen.host}:${l.listen.port}`, forwardTo: `${l.forwardTo.host}:${l.forwardTo.port}` })),
    outbound: config.outbound.map((l) => ({ ...l, listen: `${l.listen.host}:${l.listen.port}`, upstream: `${l.upstream.host}:${l.upstream.port}`, spiffeId: l.spiffeId.toString() })),
    admin: { listen: `${config.admin.listen.host}:${config.admin.listen.port}` },
  };
}
