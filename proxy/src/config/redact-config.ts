// The effective config as /config shows it: paths and settings, never token values.
import type { Address, ProxyConfig } from './proxy-config.js';

const addressText = (a: Address) => `${a.host}:${a.port}`;

type ControlPlaneIdentity = Extract<ProxyConfig['identity'], { kind: 'controlPlane' }>;

/** The token's value hidden; where the trust domain was written is the parser's, not a setting. */
function controlPlaneIdentity(id: ControlPlaneIdentity): Record<string, unknown> {
  const { trustDomainAt: _place, ...shown } = id;
  return shown.joinToken ? { ...shown, joinToken: '<redacted>' } : shown;
}

export function redactedConfig(config: ProxyConfig): Record<string, unknown> {
  const identity = config.identity.kind === 'controlPlane' ? controlPlaneIdentity(config.identity) : config.identity;
  return {
    ...config,
    identity,
    inbound: config.inbound.map((l) => ({ ...l, listen: addressText(l.listen), forwardTo: addressText(l.forwardTo), ...(l.registration?.advertise ? { registration: { ...l.registration, advertise: addressText(l.registration.advertise) } } : {}) })),
    outbound: config.outbound.map((l) => ({ ...l, listen: addressText(l.listen), route: l.route.kind === 'static' ? { kind: 'static', upstream: addressText(l.route.upstream), spiffeId: l.route.spiffeId.toString() } : l.route })),
    admin: { listen: addressText(config.admin.listen) },
  };
}
