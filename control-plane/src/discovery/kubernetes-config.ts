// The control plane's `discovery.kubernetes` config block: where the Kubernetes API is (in-cluster defaults), which
// namespaces to watch, and the sidecar's inbound port the EndpointSlice source puts in each endpoint.
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { apiServerUrl, httpsOnly, IN_CLUSTER_API_SERVER_TEXT, SERVICE_ACCOUNT_DIR } from '../attestation/k8s-api-fetch.js';

/** The sidecar's inbound listener port the injector configures (tessera.dev/inbound-port overrides it per pod). */
export const DEFAULT_INBOUND_PORT = 15006;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const KUBERNETES_DISCOVERY_SCHEMA: ObjectSchema = {
  type: 'object',
  absentAsEmpty: true,
  description: 'Endpoints from the Kubernetes API: EndpointSlices and Pods, watched',
  properties: {
    enabled: { type: 'boolean', default: false },
    apiServer: {
      type: 'string',
      format: 'url',
      check: httpsOnly,
      description: `Default: ${IN_CLUSTER_API_SERVER_TEXT}`,
    },
    tokenFile: { type: 'string', minLength: 1, default: `${SERVICE_ACCOUNT_DIR}/token`, description: 'Bearer token, re-read on every (re)connect (projected tokens rotate)' },
    caFile: { type: 'string', minLength: 1, default: `${SERVICE_ACCOUNT_DIR}/ca.crt`, description: 'The API server\'s CA (PEM)' },
    namespaces: {
      type: 'array',
      items: { type: 'string', check: (v) => (NAMESPACE.test(v) ? null : `"${v}" is not a namespace name`) },
      description: 'Namespaces to watch; absent = all',
    },
    inboundPort: { type: 'number', integer: true, min: 1, max: 65_535, default: DEFAULT_INBOUND_PORT, description: 'The sidecar inbound port of each endpoint (pod annotation tessera.dev/inbound-port overrides)' },
    debounce: { type: 'duration', min: 0, max: 60_000, default: '100ms', description: 'Changes within this window make one view' },
    // client-go and istiod wait for caches without end; a bound keeps a replica useful while the API server is down.
    syncTimeout: { type: 'duration', min: 0, max: 600_000, default: '30s', description: 'How long a replica that just started holds back Discovery/Watch snapshots (and /ready) for the first list; 0: not at all' },
  },
};

/** The block as the validator gives it (durations in ms, defaults filled in). */
export interface KubernetesDiscoveryInput {
  enabled: boolean;
  apiServer?: string;
  tokenFile: string;
  caFile: string;
  namespaces?: string[];
  inboundPort: number;
  debounce: number;
  syncTimeout: number;
}

export interface KubernetesDiscoveryConfig {
  readonly apiServer: string;
  readonly tokenFile: string;
  readonly caFile: string;
  /** Empty: all namespaces. */
  readonly namespaces: readonly string[];
  readonly inboundPort: number;
  readonly debounceMs: number;
  /** How long streams' first snapshots and /ready wait for the first view (0: not at all). */
  readonly syncTimeoutMs: number;
}

/** Undefined unless `enabled: true`; file paths relative to `base` (the config file's directory). */
export function resolveKubernetesDiscovery(raw: KubernetesDiscoveryInput, base: string, env: Readonly<Record<string, string | undefined>>): KubernetesDiscoveryConfig | undefined {
  if (!raw.enabled) return undefined;
  return Object.freeze({
    apiServer: apiServerUrl(raw.apiServer, env),
    tokenFile: resolve(base, raw.tokenFile),
    caFile: resolve(base, raw.caFile),
    namespaces: Object.freeze([...new Set(raw.namespaces ?? [])]),
    inboundPort: raw.inboundPort,
    debounceMs: raw.debounce,
    syncTimeoutMs: raw.syncTimeout,
  });
}
