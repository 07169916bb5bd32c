// The Kubernetes endpoint source: EndpointSlices and Pods watched from the API server (all namespaces or the
// configured ones), mapped to a view by endpoint-slice-view.ts and reported once every collection has synced and
// after each change that alters the view, debounced. A failing API keeps the last view (the registry holds it).
import { type Clock, systemClock } from '../../../common/clock.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { type Timers, realTimers } from '../../../shared-io/timers.js';
import type { ControlPlaneLogger } from '../logger.js';
import { type EndpointSliceObject, type PodFacts, SERVICE_NAME_LABEL, type SkippedCounts, endpointSliceView, podFacts } from './endpoint-slice-view.js';
import type { EndpointSource, SourceView } from './endpoint-source.js';
import { KubernetesApiClient, type KubernetesApiOptions } from './kubernetes-api-client.js';
import type { KubernetesDiscoveryConfig } from './kubernetes-config.js';
import { ListWatch } from './kubernetes-list-watch.js';

export interface KubernetesEndpointsSourceDeps {
  readonly config: KubernetesDiscoveryConfig;
  readonly trustDomain: TrustDomain;
  readonly log: ControlPlaneLogger;
  readonly timers?: Timers;
  readonly clock?: Clock;
  /** Test hooks: watch timeout, page size, retry backoff. */
  readonly api?: Pick<KubernetesApiOptions, 'watchTimeoutSeconds' | 'pageSize' | 'listTimeoutMs'>;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** What each view leaves out, by reason (the metrics). */
  readonly onSkipped?: (skipped: SkippedCounts) => void;
}

/** Service ports logged as not meshed, each once; past this many the rest are only counted (the set stays bounded). */
const MAX_LOGGED_UNMESHED = 1000;

export interface KubernetesSourceStatus {
  readonly synced: boolean;
  readonly skipped: SkippedCounts;
  /** The last API failure, cleared when a view is reported. */
  readonly lastError?: string;
}

/** Only what the mapping reads: a cluster's slices carry more (hints, nodeName, deprecated topology). */
function projectSlice(o: Record<string, unknown>): EndpointSliceObject {
  const s = o as EndpointSliceObject;
  const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
  return {
    metadata: { ...(s.metadata?.name !== undefined ? { name: s.metadata.name } : {}), ...(s.metadata?.namespace !== undefined ? { namespace: s.metadata.namespace } : {}), labels: svc !== undefined ? { [SERVICE_NAME_LABEL]: svc } : {} },
    ...(s.addressType !== undefined ? { addressType: s.addressType } : {}),
    ports: (s.ports ?? []).map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), ...(typeof p.port === 'number' ? { port: p.port } : {}), ...(p.protocol !== undefined ? { protocol: p.protocol } : {}), ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}) })),
    endpoints: (s.endpoints ?? []).map((e) => ({
      addresses: (e.addresses ?? []).slice(0, 1),
      ...(e.conditions ? { conditions: { ready: e.conditions.ready ?? null, terminating: e.conditions.terminating ?? null } } : {}),
      ...(e.targetRef ? { targetRef: { ...(e.targetRef.kind !== undefined ? { kind: e.targetRef.kind } : {}), ...(e.targetRef.namespace !== undefined ? { namespace: e.targetRef.namespace } : {}), ...(e.targetRef.name !== undefined ? { name: e.targetRef.name } : {}) } } : {}),
      ...(e.zone !== undefined ? { zone: e.zone } : {}),
    })),
  };
}

/** A canonical text of a view, to report only views that differ. */
function viewText(view: SourceView): string {
  return JSON.stringify([...view]);
}

export class KubernetesEndpointsSource implements EndpointSource {
  readonly name = 'kubernetes' as const;
  private readonly timers: Timers;
  private readonly slices: ListWatch<EndpointSliceObject>[] = [];
  private readonly pods: ListWatch<PodFacts>[] = [];
  private onView: ((view: SourceView) => void) | undefined;
  private pending: unknown;
  private lastText: string | undefined;
  private skipped: SkippedCounts = { unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 0, notMeshed: 0 };
  private readonly loggedUnmeshed = new Set<string>();
  private lastError: string | undefined;

  constructor(private readonly deps: KubernetesEndpointsSourceDeps) {
    this.timers = deps.timers ?? realTimers;
  }

  start(onView: (view: SourceView) => void): void {
    if (this.onView) return;
    this.onView = onView;
    const { config } = this.deps;
    const api = new KubernetesApiClient({ apiServer: config.apiServer, tokenFile: config.tokenFile, caFile: config.caFile, timers: this.timers, ...this.deps.api });
    const common = {
      api,
      onChange: () => this.changed(),
      onError: (e: Error) => this.failed(e),
      timers: this.timers,
      clock: this.deps.clock ?? systemClock,
      ...(this.deps.backoff ? { backoff: this.deps.backoff } : {}),
    };
    const scopes = config.namespaces.length ? config.namespaces.map((ns) => `/namespaces/${ns}`) : [''];
    for (const scope of scopes) {
      // Slices not made for a Service (no service-name label) are of no use: the server leaves them out.
      this.slices.push(new ListWatch({ ...common, path: `/apis/discovery.k8s.io/v1${scope}/endpointslices`, query: { labelSelector: SERVICE_NAME_LABEL }, project: projectSlice }));
      this.pods.push(new ListWatch({ ...common, path: `/api/v1${scope}/pods`, project: podFacts }));
    }
    for (const w of [...this.slices, ...this.pods]) w.start();
  }

  stop(): void {
    for (const w of [...this.slices, ...this.pods]) w.stop();
    if (this.pending !== undefined) this.timers.clearTimeout(this.pending);
    this.pending = undefined;
    this.onView = undefined;
  }

  status(): KubernetesSourceStatus {
    return { synced: this.lastText !== undefined, skipped: { ...this.skipped }, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  private changed(): void {
    if (this.pending !== undefined || !this.onView) return;
    if (![...this.slices, ...this.pods].every((w) => w.synced)) return;
    this.pending = this.timers.setTimeout(() => this.report(), this.deps.config.debounceMs);
  }

  private report(): void {
    this.pending = undefined;
    const onView = this.onView;
    if (!onView) return;
    const pods = new Map<string, PodFacts>();
    for (const w of this.pods) for (const [k, p] of w.items) pods.set(k, p);
    const { view, skipped, unmeshedPorts } = endpointSliceView(
      this.slices.flatMap((w) => [...w.items.values()]),
      pods,
      { trustDomain: this.deps.trustDomain, inboundPort: this.deps.config.inboundPort },
    );
    // Pods without a sidecar are services outside the mesh, not a fault: counted, not warned about.
    const faults = (c: SkippedCounts) => c.unknownPod + c.noServiceAccount + c.badInboundPort;
    if (faults(skipped) > 0 && faults(skipped) !== faults(this.skipped)) {
      this.deps.log.warn({ skipped }, 'kubernetes discovery: endpoints left out (pod unknown, no service account, or a bad tessera.dev/inbound-port or inbound-ports)');
    }
    // A Service port no listener of the pod fronts: the pod stays out of that Service rather than get another port's
    // traffic; said once per port, as the view is recomputed on every change.
    const fresh = unmeshedPorts.filter((p) => !this.loggedUnmeshed.has(p));
    if (fresh.length > 0 && this.loggedUnmeshed.size < MAX_LOGGED_UNMESHED) {
      for (const p of fresh) this.loggedUnmeshed.add(p);
      this.deps.log.warn({ servicePorts: fresh.slice(0, 20), more: Math.max(0, fresh.length - 20) }, 'kubernetes discovery: Service port not in the pod\'s tessera.dev/inbound-ports; those endpoints are left out');
    }
    this.skipped = skipped;
    this.deps.onSkipped?.(skipped);
    const text = viewText(view);
    if (text === this.lastText) return;
    const first = this.lastText === undefined;
    this.lastText = text;
    this.lastError = undefined;
    if (first) this.deps.log.info({ services: view.size, endpoints: [...view.values()].reduce((n, e) => n + e.length, 0) }, 'kubernetes discovery synced');
    onView(view);
  }

  private failed(e: Error): void {
    this.lastError = e.message;
    this.deps.log.warn({ err: { code: (e as { code?: unknown }).code, message: e.message } }, 'kubernetes discovery: API call failed; retrying, the last view stands');
  }
}
