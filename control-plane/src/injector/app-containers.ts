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

export function appContainers(pod: Pod): AppContainerRef[] {
  const regular = pod.spec.containers.map((container, index) => ({ list: 'containers' as const, index, container }));
  const sidecars = (pod.spec.initContainers ?? []).flatMap((container, index) =>
    isNativeSidecar(container) && container.name !== SIDECAR_NAME ? [{ list: 'initContainers' as const, index, container }] : [],
  );
  return [...regular, ...sidecars];
}

/** Whether a container already has the injector's additions: they always include the Workload API volume mount. */
export function hasWorkloadMount(c: Container): boolean {
  return (c.volumeMounts ?? []).some((m) => m.name === VOLUME.workload);
}
