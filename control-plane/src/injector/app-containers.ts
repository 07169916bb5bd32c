// Which containers of a pod run alongside the app and so get the Workload API socket, SPIFFE_ENDPOINT_SOCKET and
// their probes rewritten: every regular container, and the user's own native sidecars (init containers with
// restartPolicy Always, started after the Tessera sidecar, running as long as the app). Regular init containers run
// to completion before the app and cannot have probes: they are left as they are.
import type { Container, Pod } from './k8s-types.js';
import { SIDECAR_NAME, VOLUME } from './sidecar.js';

export type ContainerList = 'containers' | 'initContainers';

export interface AppContainerRef {
  readonly list: ContainerList;
  /** Index in that list of the pod as it was sent (before the Tessera sidecar is inserted first). */
  readonly index: number;
  readonly container: Container;
}

export function isNativeSidecar(c: Container): boolean {
  return c.restartPolicy === 'Always';
}

/**
 * Only containers that start after the Tessera sidecar: the kubelet starts init containers in order and waits for
 * each native sidecar's startup probe before the next, so a native sidecar placed before tessera-proxy (by another
 * webhook, after injection) starts before it. Its probes relayed through tessera-proxy could never pass and the pod
 * would stay in Init (audit 5, N3): it is left as it is, like regular init containers. At the first injection
 * tessera-proxy is inserted first, so every native sidecar of the pod comes after it.
 */
export function appContainers(pod: Pod): AppContainerRef[] {
  const regular = pod.spec.containers.map((container, index) => ({ list: 'containers' as const, index, container }));
  const inits = pod.spec.initContainers ?? [];
  const proxyAt = inits.findIndex((c) => c.name === SIDECAR_NAME);
  const sidecars = inits.flatMap((container, index) =>
    isNativeSidecar(container) && container.name !== SIDECAR_NAME && index > proxyAt ? [{ list: 'initContainers' as const, index, container }] : [],
  );
  return [...regular, ...sidecars];
}

/** Whether a container already has the injector's additions: they always include the Workload API volume mount. */
export function hasWorkloadMount(c: Container): boolean {
  return (c.volumeMounts ?? []).some((m) => m.name === VOLUME.workload);
}
