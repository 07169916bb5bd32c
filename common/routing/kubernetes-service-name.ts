// How a Kubernetes-style service name reads, the one parser for both sides: the control plane's default rule of
// who may serve a name (service-identities.ts) and the forward proxy's resolution of a request's host
// (service-host.ts). They must agree, or a name the control plane gives to one workload is routed to another.
// The reading is kube-dns's, from a pod whose search path is `<ns>.svc.<domain> svc.<domain> <domain>`:
//   api                       → service api, the caller's namespace (the mesh: `default`, as the attestor names it)
//   api.ns                    → api in ns            (found as api.ns.svc.<domain>)
//   api.ns.svc                → api in ns            (found as api.ns.svc.<domain>)
//   api.ns.svc.<domain>[.]    → api in ns            (the FQDN; a final dot is allowed here only)
//   api.svc                   → api in namespace svc (found as api.svc.svc.<domain>), never `api`
//   api.svc.<domain>          → nothing (a namespace-level name, no service record)
// Anything else (more labels, another domain, a bad label, a final dot on a relative name) has no reading.
// Pod records of headless services (`<pod>.<svc>.<ns>…`) are not modelled: the mesh names services only.

/** The cluster DNS domain kube-dns serves when the cluster sets none (kubelet --cluster-domain). */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** A DNS-1123 label, as Kubernetes requires of namespace and service names. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface KubernetesServiceName {
  readonly service: string;
  /** Undefined for a bare `api`: the caller's own namespace. */
  readonly namespace: string | undefined;
}

/** What `name` reads as under kube-dns (case-insensitive), or null when it names no service. */
export function parseKubernetesServiceName(name: string, clusterDomain: string = DEFAULT_CLUSTER_DOMAIN): KubernetesServiceName | null {
  let host = name.toLowerCase();
  const domain = clusterDomain.toLowerCase().replace(/\.$/, '');
  // A final dot makes the name absolute: the search path no longer applies, so only the full form resolves.
  const absolute = host.endsWith('.');
  if (absolute) host = host.slice(0, -1);
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  const suffix = `.svc.${domain}`;
  if (host.endsWith(suffix)) {
    const rest = host.slice(0, -suffix.length).split('.');
    return rest.length === 2 ? { service: rest[0]!, namespace: rest[1]! } : null;
  }
  if (absolute) return null;
  if (labels.length === 1) return { service: labels[0]!, namespace: undefined };
  if (labels.length === 2) return { service: labels[0]!, namespace: labels[1]! };
  if (labels.length === 3 && labels[2] === 'svc') return { service: labels[0]!, namespace: labels[1]! };
  return null;
}

/** The mesh's canonical name of a namespaced service, as the Kubernetes source registers it: `<service>.<ns>`. */
export function canonicalServiceName(k: KubernetesServiceName): string | null {
  return k.namespace === undefined ? null : `${k.service}.${k.namespace}`;
}
