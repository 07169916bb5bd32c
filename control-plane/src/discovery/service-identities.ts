// Who may serve a service by self-registration. Proving an SVID says who a workload is, not which services it may
// answer for: without this rule any workload of the trust domain could register endpoints under any service name and
// draw a share of its callers' traffic (their requests, tokens and identity headers), since a caller's sidecar
// checks only that each endpoint presents the ID it was registered with. As Linkerd and Istio take a service's
// identities from the service accounts of the pods it selects, and Consul asks for `service:write` on the name:
// a service listed in `discovery.serviceIdentities` may be registered by the IDs its patterns match, and only by
// them; any other by the workload its name points at as kube-dns reads it (`api`, `api.ns`, `api.ns.svc`,
// `api.ns.svc.cluster.local`; `api.svc` is api in namespace svc) → spiffe://<td>/ns/<ns|default>/sa/<sa> (the IDs the
// Kubernetes attestor gives). The reading is common/routing/kubernetes-service-name.ts, the forward proxy's too: a
// name with no Kubernetes reading (`api.ns.svc.anything`) is nobody's until listed. A listed name also governs its
// other spellings (`api`, `api.default.svc`, `api.default.svc.cluster.local` for `api.default`): callers reach a service by any of them (the forward proxy
// tries the name as written first), so pinning one must pin all. Endpoints from Kubernetes or the static file are
// the operator's word and are not judged here.
import { anyOf, idPatternSource } from '../../../common/policy/pattern-regex.js';
import { parseKubernetesServiceName } from '../../../common/routing/kubernetes-service-name.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';

/** Whether `spiffeId` may register endpoints of `service`. */
export type MayServe = (service: string, spiffeId: string) => boolean;

/** A Kubernetes namespace and service account. */
type Account = { readonly ns: string; readonly sa: string };

/** The namespace and service account a service name reads as under kube-dns (a bare name: `default`), or null when it has none. */
function accountOf(service: string): Account | null {
  const k = parseKubernetesServiceName(service);
  return k === null ? null : { ns: k.namespace ?? 'default', sa: k.service };
}

/** The key of a service's spellings: its account. */
const accountKey = (a: Account) => `${a.ns}/${a.sa}`;

/** The ID the Kubernetes attestor gives the pods of an account. */
const accountId = (trustDomain: TrustDomain, a: Account) => `spiffe://${trustDomain.name}/ns/${a.ns}/sa/${a.sa}`;

/** The workload a service name points at when no list names its identities, or null when the name has no such reading. */
export function conventionalId(trustDomain: TrustDomain, service: string): string | null {
  const account = accountOf(service);
  return account === null ? null : accountId(trustDomain, account);
}

export function serviceIdentityRule(trustDomain: TrustDomain, listed: Readonly<Record<string, readonly string[]>> = {}): MayServe {
  const byName = new Map<string, RegExp | null>();
  // Every pattern listed under any spelling of one name, for the spellings not listed themselves.
  const byAccount = new Map<string, string[]>();
  for (const [service, patterns] of Object.entries(listed)) {
    byName.set(service, anyOf(patterns.map(idPatternSource)));
    const account = accountOf(service);
    if (account !== null) byAccount.set(accountKey(account), [...(byAccount.get(accountKey(account)) ?? []), ...patterns]);
  }
  const byAccountRe = new Map([...byAccount].map(([a, patterns]) => [a, anyOf(patterns.map(idPatternSource))] as const));
  return (service, spiffeId) => {
    if (byName.has(service)) return byName.get(service)?.test(spiffeId) ?? false;
    const account = accountOf(service);
    if (account === null) return false;
    const pinned = byAccountRe.get(accountKey(account));
    if (pinned !== undefined) return pinned?.test(spiffeId) ?? false;
    return accountId(trustDomain, account) === spiffeId;
  };
}
