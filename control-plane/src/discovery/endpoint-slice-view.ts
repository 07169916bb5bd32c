// The pure mapping from Kubernetes EndpointSlices (discovery.k8s.io/v1) and the Pods they point at to a source view:
// service `<service>.<namespace>`, one endpoint per meshed pod at its sidecar's inbound port, SPIFFE ID from the
// pod's namespace and service account, readiness from the endpoint's conditions, protocol from the slice's port.
// The slice's port (the Service's target port) picks the sidecar listener through the pod's tessera.dev/inbound-ports,
// numbered as the injector numbers them, so a Service on the app's second port reaches that port's listener.
import { type EndpointProtocol, DEFAULT_ENDPOINT_WEIGHT, type ServiceEndpoint, endpointAddress } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { ANNOTATION, FIRST_INBOUND_PORT, parseInboundPorts } from '../injector/annotations.js';
import type { SourceView } from './endpoint-source.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const INBOUND_PORT_ANNOTATION = 'tessera.dev/inbound-port';
/** Written by the injector on every pod it gave a sidecar. */
export const INJECTED_ANNOTATION = 'tessera.dev/injected';

/** The fields of an EndpointSlice this mapping reads (the API object has more). */
export interface EndpointSliceObject {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly addressType?: string;
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: string; readonly appProtocol?: string }[] | null;
  readonly endpoints?:
    | readonly {
        readonly addresses?: readonly string[];
        readonly conditions?: { readonly ready?: boolean | null; readonly serving?: boolean | null; readonly terminating?: boolean | null };
        readonly targetRef?: { readonly kind?: string; readonly namespace?: string; readonly name?: string };
        readonly zone?: string;
      }[]
    | null;
}

/** What the mapping needs of a Pod (the source keeps only this much of each). */
export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccountName: string;
  /** The tessera.dev/inbound-port annotation, unparsed; undefined when absent. */
  readonly inboundPort?: string;
  /**
   * The app ports of tessera.dev/inbound-ports in order (the injector's listener for the i-th is 15006 + i);
   * undefined when absent, null when the annotation does not parse (the injector would have refused it).
   */
  readonly inboundPorts?: readonly number[] | null;
  /** The pod has a Tessera sidecar: injected (tessera.dev/injected), or one of its own (tessera.dev/inbound-port). */
  readonly meshed: boolean;
}

/** The pod projection of a Pod API object: `{ metadata, spec }`. */
export function podFacts(pod: { metadata?: { name?: string; namespace?: string; annotations?: Readonly<Record<string, string>> | null }; spec?: { serviceAccountName?: string } }): PodFacts {
  const annotations = pod.metadata?.annotations ?? {};
  const port = annotations[INBOUND_PORT_ANNOTATION];
  const meshed = port !== undefined || annotations[INJECTED_ANNOTATION] !== undefined;
  const list = annotations[ANNOTATION.inboundPorts];
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    serviceAccountName: pod.spec?.serviceAccountName ?? '',
    ...(port !== undefined ? { inboundPort: port } : {}),
    ...(list !== undefined ? { inboundPorts: appPortsOf(list) } : {}),
    meshed,
  };
}

/** The injector's own parser, fed the port list alone: only the ports and their order decide the listeners. */
function appPortsOf(list: string): readonly number[] | null {
  try {
    return Object.freeze(parseInboundPorts({ [ANNOTATION.inboundPorts]: list }).map((p) => p.appPort));
  } catch {
    return null;
  }
}

/** Why endpoints were left out; the counts are per endpoint of the slices. */
export interface SkippedCounts {
  /** targetRef is missing, not a Pod, or names a pod the source does not know (yet). */
  unknownPod: number;
  /** The pod has no serviceAccountName, or it cannot form a SPIFFE ID. */
  noServiceAccount: number;
  /** The pod's tessera.dev/inbound-port annotation is not a port number, or its tessera.dev/inbound-ports does not parse. */
  badInboundPort: number;
  /** The Service's target port is not among the pod's tessera.dev/inbound-ports: no sidecar listener fronts it. */
  portNotMeshed: number;
  /** The pod has no Tessera sidecar (nothing listens on its inbound port): not an error, services outside the mesh. */
  notMeshed: number;
}

export interface EndpointSliceViewResult {
  readonly view: SourceView;
  readonly skipped: SkippedCounts;
  /** `<service>:<port>` of each Service port left out as not meshed by some pod, sorted, each once. */
  readonly unmeshedPorts: readonly string[];
}

export interface EndpointSliceViewOptions {
  readonly trustDomain: TrustDomain;
  /** Used for a pod with neither tessera.dev/inbound-port nor tessera.dev/inbound-ports. */
  readonly inboundPort: number;
}

const APP_PROTOCOLS: Readonly<Record<string, EndpointProtocol>> = {
  http: 'http',
  'kubernetes.io/ws': 'http',
  http2: 'http2',
  'kubernetes.io/h2c': 'http2',
  grpc: 'grpc',
  tcp: 'tcp',
};
const NAME_PREFIXES: Readonly<Record<string, EndpointProtocol>> = { http: 'http', http2: 'http2', grpc: 'grpc', tcp: 'tcp', https: 'tcp', tls: 'tcp' };

/**
 * The protocol of a slice's port: its appProtocol (an unknown one is opaque: tcp), else the Istio-style name prefix
 * (`http-`, `http2-`, `grpc-`, `tcp-`; `https-`/`tls-` carry TLS of the app's own, opaque to the mesh), else http.
 * A slice with several ports: the first TCP port decides (an endpoint has one inbound listener, one protocol).
 */
export function portProtocol(ports: EndpointSliceObject['ports']): EndpointProtocol {
  return protocolOf(tcpPorts(ports)[0]);
}

type SlicePort = NonNullable<EndpointSliceObject['ports']>[number];
const tcpPorts = (ports: EndpointSliceObject['ports']): SlicePort[] => (ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');

function protocolOf(port: SlicePort | undefined): EndpointProtocol {
  if (!port) return 'http';
  if (port.appProtocol) return APP_PROTOCOLS[port.appProtocol.toLowerCase()] ?? 'tcp';
  const prefix = (port.name ?? '').toLowerCase().split('-')[0]!;
  return NAME_PREFIXES[prefix] ?? 'http';
}

/** A tessera.dev/inbound-port value: a port number, or null (the pod is then left out, counted badInboundPort). */
export function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text.trim())) return null;
  const n = Number(text);
  return n >= 1 && n <= 65_535 ? n : null;
}

type Target = { readonly port: number; readonly protocol: EndpointProtocol } | 'bad' | { readonly unmeshed: number };

/**
 * The sidecar listener (and protocol) a pod serves the slice's Service on. tessera.dev/inbound-port: the pod's own
 * sidecar, one listener. tessera.dev/inbound-ports: the first of the slice's TCP ports the pod meshes, at 15006 + its
 * index in the list (a slice without port numbers: the first listener); none meshed: the Service's target port,
 * which no listener fronts. Neither annotation: the configured inbound port.
 */
function targetOf(pod: PodFacts, ports: EndpointSliceObject['ports'], opts: EndpointSliceViewOptions): Target {
  if (pod.inboundPort !== undefined) {
    const port = parsePort(pod.inboundPort);
    return port === null ? 'bad' : { port, protocol: portProtocol(ports) };
  }
  if (pod.inboundPorts === null) return 'bad';
  if (pod.inboundPorts === undefined || pod.inboundPorts.length === 0) return { port: opts.inboundPort, protocol: portProtocol(ports) };
  const tcp = tcpPorts(ports);
  const numbered = tcp.filter((p) => p.port !== undefined);
  if (numbered.length === 0) return { port: FIRST_INBOUND_PORT, protocol: protocolOf(tcp[0]) };
  for (const p of numbered) {
    const i = pod.inboundPorts.indexOf(p.port!);
    if (i >= 0) return { port: FIRST_INBOUND_PORT + i, protocol: protocolOf(p) };
  }
  return { unmeshed: numbered[0]!.port! };
}

/** Kubernetes object names (DNS subdomains): anything else could add path segments to the SPIFFE ID. */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function spiffeIdOf(td: TrustDomain, pod: PodFacts): string | null {
  if (!K8S_NAME.test(pod.serviceAccountName) || !K8S_NAME.test(pod.namespace)) return null;
  try {
    return SpiffeId.fromSegments(td, 'ns', pod.namespace, 'sa', pod.serviceAccountName).toString();
  } catch {
    return null;
  }
}

/** Ready unless the conditions say not ready or terminating (Kubernetes: a missing `ready` means ready). */
function isReady(c: { ready?: boolean | null; terminating?: boolean | null } | undefined): boolean {
  return c?.ready !== false && c?.terminating !== true;
}

/**
 * The complete view of the given slices: slices without the service-name label and FQDN slices are ignored; each
 * endpoint uses its first address (as kube-proxy does: the addresses are one pod's); an address listed by two
 * slices of a service (slices being rebalanced) appears once, ready if either says so.
 */
export function endpointSliceView(slices: Iterable<EndpointSliceObject>, pods: ReadonlyMap<string, PodFacts>, opts: EndpointSliceViewOptions): EndpointSliceViewResult {
  const skipped: SkippedCounts = { unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 0, notMeshed: 0 };
  const unmeshedPorts = new Set<string>();
  const services = new Map<string, Map<string, ServiceEndpoint>>();
  for (const slice of slices) {
    const svc = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    const ns = slice.metadata?.namespace;
    if (!svc || !ns || (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6')) continue;
    const name = `${svc}.${ns}`;
    const endpoints = services.get(name) ?? new Map<string, ServiceEndpoint>();
    services.set(name, endpoints);
    for (const e of slice.endpoints ?? []) {
      const host = e.addresses?.[0];
      if (!host) continue;
      const ref = e.targetRef;
      const pod = ref?.kind === 'Pod' && ref.name ? pods.get(`${ref.namespace ?? ns}/${ref.name}`) : undefined;
      if (!pod) {
        skipped.unknownPod++;
        continue;
      }
      if (!pod.meshed) {
        skipped.notMeshed++;
        continue;
      }
      const spiffeId = spiffeIdOf(opts.trustDomain, pod);
      if (!spiffeId) {
        skipped.noServiceAccount++;
        continue;
      }
      const target = targetOf(pod, slice.ports, opts);
      if (target === 'bad') {
        skipped.badInboundPort++;
        continue;
      }
      if ('unmeshed' in target) {
        skipped.portNotMeshed++;
        unmeshedPorts.add(`${name}:${target.unmeshed}`);
        continue;
      }
      const { port, protocol } = target;
      const zone = e.zone && e.zone.length <= 63 ? e.zone : '';
      const endpoint: ServiceEndpoint = { host, port, spiffeId, protocol, ready: isReady(e.conditions), zone, weight: DEFAULT_ENDPOINT_WEIGHT, source: 'kubernetes' };
      const key = endpointAddress(endpoint);
      if (!endpoints.get(key)?.ready) endpoints.set(key, endpoint);
    }
  }
  const view = new Map<string, readonly ServiceEndpoint[]>();
  for (const name of [...services.keys()].sort()) {
    const byAddress = services.get(name)!;
    view.set(name, Object.freeze([...byAddress.keys()].sort().map((k) => byAddress.get(k)!)));
  }
  return { view, skipped, unmeshedPorts: [...unmeshedPorts].sort() };
}
