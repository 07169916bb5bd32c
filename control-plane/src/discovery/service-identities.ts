// Who may serve a service by self-registration. Proving an SVID says who a workload is, not which services it may
// answer for: without this rule any workload of the trust domain could register endpoints under any service name and
// draw a share of its callers' traffic (their requests, tokens and identity headers), since a caller's sidecar
// checks only that each endpoint presents the ID it was registered with. As Linkerd and Istio take a service's
// identities from the service accounts of the pods it selects, and Consul asks for `service:write` on the name:
// a service listed in `discovery.serviceIdentities` may be registered by the IDs its patterns match, and only by
// them; any other by the workload its name points at, `<sa>[.<ns>[.svc…]]` → spiffe://<td>/ns/<ns|default>/sa/<sa>
// (the IDs the Kubernetes attestor gives). Endpoints from Kubernetes or the static file are the operator's word
// and are not judged here.
import { anyOf, idPatternSource } from '../../../common/policy/pattern-regex.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';

/** Whether `spiffeId` may register endpoints of `service`. */
export type MayServe = (service: string, spiffeId: string) => boolean;

/** The workload a service name points at when no list names its identities, or null when the name has no such reading. */
export function conventionalId(trustDomain: TrustDomain, service: string): string | null {
  const labels = service.split('.');
  // `api`, `api.payments`, `api.payments.svc`, `api.payments.svc.cluster.local`; anything else must be listed.
  if (labels.length > 2 && labels[2] !== 'svc') return null;
  const [sa, ns = 'default'] = labels;
  if (!sa || !ns) return null;
  return `spiffe://${trustDomain.name}/ns/${ns}/sa/${sa}`;
}

export function serviceIdentityRule(trustDomain: TrustDomain, listed: Readonly<Record<string, readonly string[]>> = {}): MayServe {
  const lists = new Map<string, RegExp | null>();
  for (const [service, patterns] of Object.entries(listed)) lists.set(service, anyOf(patterns.map(idPatternSource)));
  return (service, spiffeId) => {
    if (lists.has(service)) return lists.get(service)?.test(spiffeId) ?? false;
    return conventionalId(trustDomain, service) === spiffeId;
  };
}
