// Decides whether and how to inject one pod: skip (with the reason), or the exact additions; refuses bad pods.
import { X509Certificate } from 'node:crypto';
import { TesseraError } from '../../../common/errors.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import {
  ANNOTATION,
  NAMESPACE_INJECT_LABEL,
  NAMESPACE_INJECT_VALUE,
  RESERVED_PORTS,
  parseHttpProxy,
  parseInboundPorts,
  parseOutbound,
  parseTelemetry,
  podOptsOut,
} from './annotations.js';
import type { InjectorConfig } from './injector-config.js';
import { type Container, type EnvVar, type Json, type Pod, type Volume, type VolumeMount, isObject } from './k8s-types.js';
import { type AppProbeTarget, type ProbeField, rewriteProbes } from './probe-rewrite.js';
import { buildProxyConfig, HTTP_PROXY_URL, renderProxyConfigYaml, SIDECAR_PATHS } from './proxy-config.js';
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
}

export type SkipReason = 'namespace-not-enabled' | 'opted-out' | 'already-injected' | 'host-network';

export interface AppContainerAdditions {
  readonly index: number;
  readonly mount: VolumeMount;
  /** Appended to the container's env: SPIFFE_ENDPOINT_SOCKET and the proxy variables it does not set itself; absent when none. */
  readonly env?: readonly EnvVar[];
  /** Probes replaced by their sidecar-relayed form (probe-rewrite.ts); absent when none is rewritten. */
  readonly probes?: Partial<Record<ProbeField, Json>>;
}

export interface PodAdditions {
  /** Set (added or overwritten) on metadata.annotations. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Inserted first in spec.initContainers. */
  readonly sidecar: Container;
  /** Appended to spec.volumes. */
  readonly volumes: readonly Volume[];
  readonly appContainers: readonly AppContainerAdditions[];
}

export type InjectionPlan =
  | { readonly action: 'skip'; readonly reason: SkipReason; readonly warning?: string }
  | { readonly action: 'inject'; readonly pod: Pod; readonly additions: PodAdditions };

function notAPod(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `not a pod: ${message}`);
}

function conflict(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_CONFLICT', message);
}

/** Checks the parts of the pod that injection reads or extends; everything else is the API server's job. */
export function asPod(value: unknown): Pod {
  if (!isObject(value)) throw notAPod('expected an object');
  if (value.metadata !== undefined && !isObject(value.metadata)) throw notAPod('metadata is not an object');
  const meta = (value.metadata ?? {}) as Record<string, unknown>;
  if (meta.annotations !== undefined && meta.annotations !== null) {
    if (!isObject(meta.annotations) || Object.values(meta.annotations).some((v) => typeof v !== 'string')) {
      throw notAPod('metadata.annotations is not a map of strings');
    }
  }
  const spec = value.spec;
  if (!isObject(spec)) throw notAPod('spec is missing');
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) throw notAPod('spec.containers is missing or empty');
  for (const key of ['containers', 'initContainers'] as const) {
    const list = spec[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw notAPod(`spec.${key} is not a list`);
    list.forEach((c, i) => {
      if (!isObject(c) || typeof c.name !== 'string') throw notAPod(`spec.${key}[${i}] has no name`);
      for (const sub of ['ports', 'env', 'volumeMounts'] as const) {
        if (c[sub] !== undefined && c[sub] !== null && !Array.isArray(c[sub])) throw notAPod(`spec.${key}[${i}].${sub} is not a list`);
      }
    });
  }
  if (spec.volumes !== undefined && spec.volumes !== null && !Array.isArray(spec.volumes)) throw notAPod('spec.volumes is not a list');
  return value as unknown as Pod;
}

export function isInjected(pod: Pod): boolean {
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  return all.some((c) => c.name === SIDECAR_NAME);
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

function checkConflicts(pod: Pod): void {
  const ours = new Set<string>(Object.values(VOLUME));
  for (const v of pod.spec.volumes ?? []) {
    if (ours.has(v.name)) throw conflict(`volume "${v.name}" already exists; the Tessera sidecar needs that name`);
  }
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const p of c.ports ?? []) {
      if (p.containerPort >= RESERVED_PORTS.first && p.containerPort <= RESERVED_PORTS.last) {
        throw conflict(`container "${c.name}" declares port ${p.containerPort}, inside the range ${RESERVED_PORTS.first}-${RESERVED_PORTS.last} the Tessera sidecar owns`);
      }
    }
  }
  for (const c of pod.spec.containers) {
    for (const m of c.volumeMounts ?? []) {
      if (m.mountPath.replace(/\/+$/, '') === SIDECAR_PATHS.workloadDir) {
        throw conflict(`container "${c.name}" already mounts ${SIDECAR_PATHS.workloadDir}, where the sidecar puts the Workload API socket`);
      }
    }
  }
}

/**
 * Pure: the same pod, namespace labels and context give the same plan. Throws TesseraError for pods that must
 * be refused (malformed tessera.dev annotations, name/port conflicts, no bundle): the webhook denies those.
 */
export function planInjection(input: InjectionInput, ctx: InjectionContext): InjectionPlan {
  const pod = asPod(input.pod);
  if (input.namespaceLabels && input.namespaceLabels[NAMESPACE_INJECT_LABEL] !== NAMESPACE_INJECT_VALUE) {
    return { action: 'skip', reason: 'namespace-not-enabled' };
  }
  if (isInjected(pod)) return { action: 'skip', reason: 'already-injected' };
  const annotations = pod.metadata?.annotations ?? {};
  if (podOptsOut(annotations)) return { action: 'skip', reason: 'opted-out' };
  if (pod.spec.hostNetwork === true) {
    return {
      action: 'skip',
      reason: 'host-network',
      warning: 'tessera: pod uses hostNetwork and was not injected; its traffic is not protected by mTLS',
    };
  }
  const inbound = parseInboundPorts(annotations);
  const outbound = parseOutbound(
    annotations,
    inbound.map((p) => p.appPort),
  );
  const httpProxy = parseHttpProxy(annotations, outbound);
  checkConflicts(pod);
  checkBundle(ctx.bundlePem);
  const rewritten = pod.spec.containers.map(rewriteProbes);
  const appProbes = Object.assign({}, ...rewritten.map((r) => r.targets)) as Record<string, AppProbeTarget>;
  const proxyYaml = renderProxyConfigYaml(buildProxyConfig(ctx.config, inbound, outbound, parseTelemetry(annotations), appProbes, { httpProxy }));
  const appContainers = pod.spec.containers.map((c, index) => {
    const env = appEnv(c.env ?? [], httpProxy ? HTTP_PROXY_URL : undefined);
    const probes = rewritten[index]!.probes;
    return { index, mount: appVolumeMount(), ...(env.length > 0 ? { env } : {}), ...(Object.keys(probes).length > 0 ? { probes } : {}) };
  });
  return {
    action: 'inject',
    pod,
    additions: {
      annotations: {
        [ANNOTATION.injected]: ctx.config.version,
        [ANNOTATION.proxyConfig]: proxyYaml,
        [ANNOTATION.bootstrapBundle]: ctx.bundlePem,
      },
      sidecar: sidecarContainer(ctx.config, inbound.length),
      volumes: sidecarVolumes(ctx.config),
      appContainers,
    },
  };
}
