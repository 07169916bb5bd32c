// Decides whether and how to inject one pod: skip (with the reason), or the exact additions; refuses bad pods.
import { X509Certificate } from 'node:crypto';
import { posix } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import { checkAnnotationSize } from './admission-limits.js';
import {
  ANNOTATION,
  NAMESPACE_INJECT_LABEL,
  NAMESPACE_INJECT_VALUE,
  RESERVED_PORTS,
  isExcludedNamespace,
  parseHttpProxy,
  parseInboundPorts,
  parseOutbound,
  parseTelemetry,
  podOptsOut,
  wantsHttpProxy,
} from './annotations.js';
import { type AppContainerRef, type ContainerList, appContainers, hasWorkloadMount, isNativeSidecar } from './app-containers.js';
import type { InjectorConfig } from './injector-config.js';
import { type Container, type EnvVar, type Json, type Pod, type Volume, type VolumeMount, isObject } from './k8s-types.js';
import { asPod } from './pod-shape.js';
import { type AppProbeTarget, type ProbeField, type RewrittenProbes, rewriteProbes } from './probe-rewrite.js';
import { addAppProbesToYaml, buildProxyConfig, HTTP_PROXY_URL, renderProxyConfigYaml, SIDECAR_PATHS } from './proxy-config.js';
import { SIDECAR_NAME, VOLUME, appEnv, appVolumeMount, sidecarContainer, sidecarVolumes } from './sidecar.js';

export interface InjectionContext {
  readonly config: InjectorConfig;
  /** PEM of the current trust bundle: the sidecar's trust anchor for its first contact with the control plane. */
  readonly bundlePem: string;
}

export interface InjectionInput {
  readonly pod: unknown;
  /** Labels of the pod's namespace when known; the webhook leaves this out (its namespaceSelector decided). */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** The namespace the pod is created in, when known (the webhook's review): EXCLUDED_NAMESPACES are never injected. */
  readonly namespace?: string;
}

export type SkipReason = 'namespace-not-enabled' | 'namespace-excluded' | 'opted-out' | 'mirror-pod' | 'already-injected' | 'host-network' | 'windows';

export interface AppContainerAdditions {
  readonly list: ContainerList;
  /** Index in `list` of the pod as sent. */
  readonly index: number;
  readonly mount: VolumeMount;
  /** Appended to the container's env: SPIFFE_ENDPOINT_SOCKET and the proxy variables it does not set itself; absent when none. */
  readonly env?: readonly EnvVar[];
  /** Probes replaced by their sidecar-relayed form (probe-rewrite.ts); absent when none is rewritten. */
  readonly probes?: Partial<Record<ProbeField, Json>>;
}

export interface PodAdditions {
  /** Set (added or overwritten) on metadata.annotations; empty when nothing there changes. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Inserted first in spec.initContainers; absent when the pod has it already (a reinvocation). */
  readonly sidecar?: Container;
  /** Appended to spec.volumes. */
  readonly volumes: readonly Volume[];
  readonly appContainers: readonly AppContainerAdditions[];
}

export type InjectionPlan =
  | { readonly action: 'skip'; readonly reason: SkipReason; readonly warning?: string }
  | { readonly action: 'inject'; readonly pod: Pod; readonly additions: PodAdditions };

function conflict(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_CONFLICT', message);
}

export function isInjected(pod: Pod): boolean {
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  return all.some((c) => c.name === SIDECAR_NAME);
}

/**
 * What says the pod runs on Windows, or null. The sidecar is a Linux image, and its securityContext (runAsUser,
 * seccompProfile, capabilities, readOnlyRootFilesystem…) is what the API server forbids in a pod with spec.os.name
 * windows; without spec.os, a nodeSelector on kubernetes.io/os: windows still puts it where it cannot run (audit 17b, F4).
 */
function windowsBy(pod: Pod): string | null {
  const { os, nodeSelector } = pod.spec;
  if (isObject(os) && os.name === 'windows') return 'spec.os.name: windows';
  if (isObject(nodeSelector) && nodeSelector['kubernetes.io/os'] === 'windows') return 'nodeSelector kubernetes.io/os: windows';
  return null;
}

/** The kubelet's marks of a static pod (its source) and of the mirror pod it creates for one in the API. */
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const SOURCE_ANNOTATION = 'kubernetes.io/config.source';

/**
 * What says the pod is a static pod or its mirror, or null. The API server's serviceaccount admission refuses a
 * mirror pod that projects a service-account token, as the sidecar must, so an injected mirror pod could never be
 * created, and the kubelet runs the static pod's own manifest anyway (audit 38b, F3). Any value of the mirror
 * annotation counts (the API server checks the key alone), and so does a Node owner, which only mirror pods have.
 */
function staticPodBy(pod: Pod): string | null {
  const annotations = pod.metadata?.annotations ?? {};
  if (Object.hasOwn(annotations, MIRROR_ANNOTATION)) return `annotation ${MIRROR_ANNOTATION}`;
  const source = annotations[SOURCE_ANNOTATION];
  if (source === 'file' || source === 'http') return `annotation ${SOURCE_ANNOTATION}: ${source}`;
  const owners = pod.metadata?.ownerReferences;
  if (Array.isArray(owners) && owners.some((o) => isObject(o) && o.kind === 'Node' && o.apiVersion === 'v1')) return 'owned by its Node';
  return null;
}

function checkBundle(pem: string): void {
  let certs: Buffer[];
  try {
    certs = decodeCertificates(pem);
    for (const der of certs) new X509Certificate(der);
  } catch {
    throw new TesseraError('TESSERA_ERR_INJECT_NO_BUNDLE', 'the trust bundle is not PEM certificates');
  }
  if (certs.length === 0) throw new TesseraError('TESSERA_ERR_INJECT_NO_BUNDLE', 'the trust bundle holds no certificate');
}

function checkVolumes(pod: Pod): void {
  const ours = new Set<string>(Object.values(VOLUME));
  for (const v of pod.spec.volumes ?? []) {
    if (ours.has(v.name)) throw conflict(`volume "${v.name}" already exists; the Tessera sidecar needs that name`);
  }
}

function checkPorts(containers: readonly Container[]): void {
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (p.containerPort >= RESERVED_PORTS.first && p.containerPort <= RESERVED_PORTS.last) {
        throw conflict(`container "${c.name}" declares port ${p.containerPort}, inside the range ${RESERVED_PORTS.first}-${RESERVED_PORTS.last} the Tessera sidecar owns`);
      }
    }
  }
}

/**
 * The TCP ports the pod's containers declare (containerPort), each with the first container that declares it: every
 * container but the sidecar, init containers too, since the sidecar starts before all of them. UDP and SCTP ports
 * cannot collide with the sidecar's TCP listeners; a hostPort is bound on the node, not in the pod.
 */
function declaredTcpPorts(pod: Pod): Map<number, string> {
  const out = new Map<number, string>();
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    if (c.name === SIDECAR_NAME) continue;
    for (const p of c.ports ?? []) if (p.protocol !== 'UDP' && p.protocol !== 'SCTP' && !out.has(p.containerPort)) out.set(p.containerPort, c.name);
  }
  return out;
}

/** The path a runtime mounts at: "//", "." and ".." resolved, no trailing "/" (the API server compares strings only). */
function effectivePath(mountPath: string): string {
  const p = posix.normalize(`/${mountPath}`);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/**
 * An app container's own mount at, or inside, the Workload API socket directory would hide the socket from it. On
 * most images /var/run is a symlink to /run and the runtime resolves mount targets through it, so /run/… is the
 * same directory (audit 5, N6).
 */
function checkMounts(refs: readonly AppContainerRef[]): void {
  const dir = SIDECAR_PATHS.workloadDir;
  const alias = dir.replace(/^\/var\/run\//, '/run/');
  const inside = (p: string, d: string) => p === d || p.startsWith(`${d}/`);
  for (const { container: c } of refs) {
    for (const m of c.volumeMounts ?? []) {
      const p = effectivePath(m.mountPath);
      if (inside(p, dir) || inside(p, alias)) {
        throw conflict(`container "${c.name}" mounts ${m.mountPath === p ? p : `"${m.mountPath}" (that is ${p})`}, where the sidecar puts the Workload API socket (${dir})`);
      }
    }
  }
}

function additionsFor(ref: AppContainerRef, rewritten: RewrittenProbes, httpProxy: boolean): AppContainerAdditions {
  const env = appEnv(ref.container.env ?? [], httpProxy ? HTTP_PROXY_URL : undefined);
  const { probes } = rewritten;
  return {
    list: ref.list,
    index: ref.index,
    mount: appVolumeMount(),
    ...(env.length > 0 ? { env } : {}),
    ...(Object.keys(probes).length > 0 ? { probes } : {}),
  };
}

const targetsOf = (rewritten: readonly RewrittenProbes[]) => Object.assign({}, ...rewritten.map((r) => r.targets)) as Record<string, AppProbeTarget>;

/**
 * Pure: the same pod, namespace, namespace labels and context give the same plan. Throws TesseraError for pods that
 * must be refused (malformed tessera.dev labels or annotations, shapes or sizes, name/port conflicts, no bundle):
 * the webhook denies those.
 */
export function planInjection(input: InjectionInput, ctx: InjectionContext): InjectionPlan {
  // Before the pod is even read: nothing about a system pod may make the injector refuse it.
  if (input.namespace !== undefined && isExcludedNamespace(input.namespace)) return { action: 'skip', reason: 'namespace-excluded' };
  const pod = asPod(input.pod);
  if (input.namespaceLabels && input.namespaceLabels[NAMESPACE_INJECT_LABEL] !== NAMESPACE_INJECT_VALUE) {
    return { action: 'skip', reason: 'namespace-not-enabled' };
  }
  const annotations = pod.metadata?.annotations ?? {};
  if (podOptsOut(annotations, pod.metadata?.labels ?? {})) return { action: 'skip', reason: 'opted-out' };
  // Before the reinvocation path too: nothing may be added to a mirror pod.
  const staticPod = staticPodBy(pod);
  if (staticPod !== null) {
    return {
      action: 'skip',
      reason: 'mirror-pod',
      warning: `tessera: pod is a static pod or its mirror (${staticPod}) and was not injected: the API server refuses a mirror pod with a service-account token volume; its traffic is not protected by mTLS`,
    };
  }
  if (isInjected(pod)) return completeInjection(pod, annotations);
  if (pod.spec.hostNetwork === true) {
    return {
      action: 'skip',
      reason: 'host-network',
      warning: 'tessera: pod uses hostNetwork and was not injected; its traffic is not protected by mTLS',
    };
  }
  const windows = windowsBy(pod);
  if (windows !== null) {
    return {
      action: 'skip',
      reason: 'windows',
      warning: `tessera: pod runs on Windows (${windows}) and was not injected: the sidecar is Linux-only; its traffic is not protected by mTLS`,
    };
  }
  const inbound = parseInboundPorts(annotations);
  const outbound = parseOutbound(
    annotations,
    inbound.map((p) => p.appPort),
    declaredTcpPorts(pod),
  );
  const httpProxy = parseHttpProxy(annotations, outbound);
  const refs = appContainers(pod);
  checkVolumes(pod);
  checkPorts([...(pod.spec.initContainers ?? []), ...pod.spec.containers]);
  checkMounts(refs);
  checkBundle(ctx.bundlePem);
  const rewritten = refs.map((r) => rewriteProbes(r.container));
  const proxyYaml = renderProxyConfigYaml(buildProxyConfig(ctx.config, inbound, outbound, parseTelemetry(annotations), targetsOf(rewritten), { httpProxy }));
  const added = {
    [ANNOTATION.injected]: ctx.config.version,
    [ANNOTATION.proxyConfig]: proxyYaml,
    [ANNOTATION.bootstrapBundle]: ctx.bundlePem,
  };
  checkAnnotationSize(annotations, added);
  return {
    action: 'inject',
    pod,
    additions: {
      annotations: added,
      sidecar: sidecarContainer(ctx.config, inbound.length),
      volumes: sidecarVolumes(ctx.config),
      appContainers: refs.map((r, i) => additionsFor(r, rewritten[i]!, httpProxy)),
    },
  };
}

/**
 * The pod already has its sidecar (a reinvocation after a later webhook, or a manifest injected offline). Containers
 * added since (none of the injector's additions: no Workload API mount) get them now, and their rewritten probes
 * join the pod's own proxy config (its annotation, extended in place, so what injected it first is kept). With
 * nothing to add it is a skip: the answer for an injected pod is no patch.
 */
function completeInjection(pod: Pod, annotations: Readonly<Record<string, string>>): InjectionPlan {
  const already: InjectionPlan = { action: 'skip', reason: 'already-injected' };
  // Ours: the native sidecar and the socket volume the added mounts refer to (else the API server would refuse
  // them); a container of that name alone is someone else's sidecar, left as it is.
  const ours =
    (pod.spec.initContainers ?? []).some((c) => c.name === SIDECAR_NAME && isNativeSidecar(c)) && (pod.spec.volumes ?? []).some((v) => v.name === VOLUME.workload);
  // Someone else's container of that name: the pod is not injected, and the user is told so (an outside audit: it
  // ran outside the mesh with no word, where hostNetwork and Windows pods get a warning).
  if (!ours) return { ...already, warning: `tessera: the pod has a container named "${SIDECAR_NAME}" that is not the injector's sidecar (a native sidecar with the ${VOLUME.workload} volume), so it was not injected; unless that container is Tessera, its traffic is not protected by mTLS` };
  const pending = appContainers(pod).filter((r) => !hasWorkloadMount(r.container));
  if (pending.length === 0) return already;
  const names = pending.map((r) => `"${r.container.name}"`).join(', ');
  const unreadable = { ...already, warning: `tessera: container(s) ${names} were added after injection, but the pod's ${ANNOTATION.proxyConfig} annotation is missing or not as the injector writes it: they get no Workload API socket and their probes are not rewritten` };
  checkPorts(pending.map((r) => r.container));
  checkMounts(pending);
  // Nor a port an outbound listener of the sidecar holds (audit 38b, F5): the same check as the first pass.
  parseOutbound(
    annotations,
    parseInboundPorts(annotations).map((p) => p.appPort),
    declaredTcpPorts(pod),
  );
  const rewritten = pending.map((r) => rewriteProbes(r.container));
  const targets = targetsOf(rewritten);
  const current = annotations[ANNOTATION.proxyConfig];
  if (current === undefined) return unreadable;
  let added: Record<string, string> = {};
  if (Object.keys(targets).length > 0) {
    const next = addAppProbesToYaml(current, targets);
    if (next === null) return unreadable;
    added = { [ANNOTATION.proxyConfig]: next };
  }
  checkAnnotationSize(annotations, added);
  // As the pod asks now; the first pass read the same annotation (a later webhook would have to change both).
  const httpProxy = wantsHttpProxy(annotations);
  return {
    action: 'inject',
    pod,
    additions: { annotations: added, volumes: [], appContainers: pending.map((r, i) => additionsFor(r, rewritten[i]!, httpProxy)) },
  };
}
