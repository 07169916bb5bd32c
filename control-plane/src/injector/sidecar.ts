// The objects injection adds to a pod: the native-sidecar proxy container, its volumes, the app-side mounts.
import { ADMIN_PORT, ANNOTATION } from './annotations.js';
import type { InjectorConfig } from './injector-config.js';
import type { Container, EnvVar, Volume, VolumeMount } from './k8s-types.js';
import { SIDECAR_PATHS, inboundListenPort } from './proxy-config.js';

export const SIDECAR_NAME = 'tessera-proxy';
export const VOLUME = Object.freeze({
  token: 'tessera-token',
  config: 'tessera-config',
  workload: 'tessera-workload-api',
  tmp: 'tessera-tmp',
});
export const SPIFFE_ENDPOINT_ENV = 'SPIFFE_ENDPOINT_SOCKET';
/** The distroless image's "nonroot" user. */
export const SIDECAR_UID = 65532;

const httpProbe = (path: string) => ({ httpGet: { path, port: ADMIN_PORT, scheme: 'HTTP' } });

export function sidecarContainer(config: InjectorConfig, inboundCount: number): Container {
  const requests = { cpu: config.resources.requests.cpu, memory: config.resources.requests.memory };
  const limits = { memory: config.resources.limits.memory, ...(config.resources.limits.cpu ? { cpu: config.resources.limits.cpu } : {}) };
  return {
    name: SIDECAR_NAME,
    image: config.proxyImage,
    imagePullPolicy: config.imagePullPolicy,
    // A native sidecar: an init container that keeps running. The kubelet starts it before the app containers
    // (and waits for its startup probe), and stops it only after they have exited.
    restartPolicy: 'Always',
    args: ['proxy', '--config', SIDECAR_PATHS.configFile],
    env: [
      { name: 'TESSERA_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'TESSERA_POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ],
    ports: [
      { name: 'tessera-admin', containerPort: ADMIN_PORT, protocol: 'TCP' },
      ...Array.from({ length: inboundCount }, (_, i) => ({ name: `tessera-in-${i}`, containerPort: inboundListenPort(i), protocol: 'TCP' })),
    ],
    // /ready turns true once the first SVID, bundle and policy snapshot are loaded: the app starts after that.
    startupProbe: { ...httpProbe('/ready'), periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 120 },
    readinessProbe: { ...httpProbe('/ready'), periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 3 },
    livenessProbe: { ...httpProbe('/healthz'), periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 6 },
    resources: { requests, limits },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUME.token, mountPath: SIDECAR_PATHS.tokenDir, readOnly: true },
      { name: VOLUME.config, mountPath: SIDECAR_PATHS.configDir, readOnly: true },
      { name: VOLUME.workload, mountPath: SIDECAR_PATHS.workloadDir },
      { name: VOLUME.tmp, mountPath: SIDECAR_PATHS.tmpDir },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

const annotationRef = (key: string) => ({ fieldRef: { fieldPath: `metadata.annotations['${key}']` } });

export function sidecarVolumes(config: InjectorConfig): Volume[] {
  return [
    {
      name: VOLUME.token,
      projected: {
        sources: [{ serviceAccountToken: { audience: config.tokenAudience, expirationSeconds: config.tokenExpirationSeconds, path: 'token' } }],
      },
    },
    {
      // Pods cannot create ConfigMaps: the injector writes the config and bootstrap bundle as annotations and
      // the downward API projects them as files, present before any container starts.
      name: VOLUME.config,
      downwardAPI: {
        items: [
          { path: 'proxy.yaml', ...annotationRef(ANNOTATION.proxyConfig) },
          { path: 'bundle.pem', ...annotationRef(ANNOTATION.bootstrapBundle) },
        ],
      },
    },
    { name: VOLUME.workload, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    { name: VOLUME.tmp, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
}

/** App containers see the Workload API socket directory (read-only mount; connecting needs no write). */
export function appVolumeMount(): VolumeMount {
  return { name: VOLUME.workload, mountPath: SIDECAR_PATHS.workloadDir, readOnly: true };
}

/**
 * Hosts the app reaches directly even with HTTP_PROXY set: loopback (its own pod), the cloud metadata address
 * (SDKs fetch credentials there over plain HTTP), and the Kubernetes API (not in the mesh; in-cluster clients
 * use HTTPS, which HTTPS_PROXY — never set — would govern, but an explicit http:// name must not be captured).
 */
export const NO_PROXY_HOSTS = 'localhost,127.0.0.1,::1,169.254.169.254,kubernetes.default,kubernetes.default.svc,kubernetes.default.svc.cluster.local';

/**
 * What the injector adds to an app container's env: the Workload API socket, and with the forward proxy
 * HTTP_PROXY/http_proxy and NO_PROXY/no_proxy (both spellings: curl reads only the lower-case http_proxy, other
 * tools the upper-case one). A variable the container sets itself — in either spelling — is left to it, as a
 * pair, so the two spellings never disagree.
 */
export function appEnv(existing: readonly EnvVar[], httpProxyUrl: string | undefined): EnvVar[] {
  const has = (...names: string[]) => existing.some((e) => names.includes(e.name));
  const out: EnvVar[] = [];
  if (!has(SPIFFE_ENDPOINT_ENV)) out.push({ name: SPIFFE_ENDPOINT_ENV, value: `unix://${SIDECAR_PATHS.workloadSocket}` });
  if (httpProxyUrl === undefined) return out;
  if (!has('HTTP_PROXY', 'http_proxy')) out.push({ name: 'HTTP_PROXY', value: httpProxyUrl }, { name: 'http_proxy', value: httpProxyUrl });
  if (!has('NO_PROXY', 'no_proxy')) out.push({ name: 'NO_PROXY', value: NO_PROXY_HOSTS }, { name: 'no_proxy', value: NO_PROXY_HOSTS });
  return out;
}
