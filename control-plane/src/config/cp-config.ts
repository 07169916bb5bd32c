// The control plane's config file (DESIGN.md section 8): schema, defaults, and loading with relative paths
// resolved against the file's directory. Unknown keys are errors naming file, line and key.
import { dirname, resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { isWritten, lineOf, parseYamlConfig } from '../../../common/config/validate-yaml.js';
import { formatDuration } from '../../../common/duration.js';
import { isTesseraError, TesseraError } from '../../../common/errors.js';
import { MAX_VIEW_SERVICES } from '../../../common/contract/discovery-v1.js';
import { isServiceName } from '../../../common/routing/service-endpoint.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { readConfigText } from '../../../shared-io/read-named-file.js';
import { DEFAULT_AUDIT_LOG_MAX_BYTES, MIN_AUDIT_LOG_MAX_BYTES } from '../store/audit-file.js';
import { MIN_TTL_BACKDATES } from '../issuance/svid-policy.js';
import { apiServerUrl, httpsOnly, IN_CLUSTER_API_SERVER_TEXT, SERVICE_ACCOUNT_DIR } from '../attestation/k8s-api-fetch.js';
import { FEDERATION_SCHEMA, checkTrustDomain, type FederationConfig, type FederationInput, resolveFederationConfig } from './federation-config.js';
import { DEFAULT_MAX_SERVICES_PER_ID, MAX_SERVICES_PER_ID_LIMIT } from '../discovery/service-name-budget.js';
import { KUBERNETES_DISCOVERY_SCHEMA, type KubernetesDiscoveryConfig, type KubernetesDiscoveryInput, resolveKubernetesDiscovery } from '../discovery/kubernetes-config.js';
import { TPM_ATTESTOR_SCHEMA, type TpmAttestorConfig, type TpmAttestorInput, resolveTpmAttestorConfig } from './tpm-config.js';
import { STORE_SCHEMA, type StoreInput, type StoreSettings, resolveStoreConfig } from './store-config.js';
import { INJECTOR_CONFIG_SCHEMA, type InjectorConfig, type InjectorConfigInput, resolveInjectorConfig } from '../injector/injector-config.js';

const HOUR = 3_600_000;
const YEAR = 366 * 24 * HOUR;
/** limits.maxStreamsPerId when unset (stream-caller.ts: why per ID, and why large). */
export const DEFAULT_MAX_STREAMS_PER_ID = 1024;
/** limits.streamOpensPerSecond when unset: serves a default maxStreamsPerId of opens again in ~5 s (stream-caller.ts). */
export const DEFAULT_STREAM_OPENS_PER_SECOND = 200;

export const controlPlaneSchema: ObjectSchema = {
  type: 'object',
  properties: {
    trustDomain: { type: 'string', format: 'trust-domain', required: true, check: checkTrustDomain, description: 'The trust domain this CA issues SPIFFE IDs in' },
    dataDir: { type: 'string', required: true, minLength: 1, description: 'CA keys, SQLite store, audit log, bundle.pem, admin.sock' },
    listen: { type: 'string', format: 'address', default: '127.0.0.1:8443', description: 'gRPC over TLS (Identity, Config); port 0 = any' },
    adminListen: { type: 'string', format: 'address', default: '127.0.0.1:8444', description: 'HTTP /healthz /ready /metrics; port 0 = any' },
    logLevel: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
    audit: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        keep: { type: 'duration', default: '400d', min: 24 * HOUR, max: 100 * YEAR, description: 'How long audit rows stay in the store; older ones are deleted hourly (audit.log is cut by size: logMaxBytes)' },
        logMaxBytes: { type: 'number', integer: true, min: 0, max: 2 ** 40, default: DEFAULT_AUDIT_LOG_MAX_BYTES, description: 'audit.log is renamed to audit.log.1 (the previous one dropped) before it would pass this size; 0 = never (rotated by you), else at least 65536' },
      },
    },
    inventory: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        // A retention, not a timer; under a minute only for tests (replicas' clocks must agree within it).
        keep: { type: 'duration', default: '24h', min: 1_000, max: 100 * YEAR, description: 'How long an expired SVID stays in the inventory (`tessera revoke serial` finds it that long)' },
      },
    },
    svid: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        // Lifetimes, not timers: bounded by what a certificate may sensibly live, not by Node's timer limit.
        ttl: { type: 'duration', default: '1h', min: 1_000, max: YEAR },
        maxTtl: { type: 'duration', default: '24h', min: 1_000, max: YEAR },
        backdate: { type: 'duration', default: '60s', max: HOUR },
        rateLimit: {
          type: 'object',
          absentAsEmpty: true,
          properties: {
            burst: { type: 'number', integer: true, min: 1, default: 20 },
            perMinute: { type: 'number', min: 0.001, default: 60 },
          },
        },
      },
    },
    ca: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        root: { type: 'string', enum: ['managed', 'offline'], default: 'managed', description: 'managed: the control plane makes its roots; offline: it never does, and signs with intermediates a root held elsewhere signed (docs/offline-root.md)' },
        rootTtl: { type: 'duration', default: '8760h', min: HOUR, max: 100 * YEAR },
        intermediateTtl: { type: 'duration', default: '168h', min: 60_000, max: 10 * YEAR },
      },
    },
    attestors: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        joinToken: { type: 'object', absentAsEmpty: true, properties: { enabled: { type: 'boolean', default: true } } },
        kubernetes: {
          type: 'object',
          properties: {
            issuer: { type: 'string', required: true, minLength: 1 },
            audience: { type: 'string', required: true, minLength: 1 },
            jwksFile: { type: 'string', minLength: 1, description: 'JWKS of the service-account issuer; required unless apiServer is set (then it defaults to <dataDir>/k8s-jwks.json, kept current)' },
            apiServer: {
              type: 'object',
              description: 'Ask the Kubernetes API: keys by OIDC discovery, and a TokenReview per attestation (the bound pod must still exist)',
              properties: {
                url: { type: 'string', format: 'url', check: httpsOnly, description: `Default: ${IN_CLUSTER_API_SERVER_TEXT}` },
                caFile: { type: 'string', minLength: 1, default: `${SERVICE_ACCOUNT_DIR}/ca.crt` },
                tokenFile: { type: 'string', minLength: 1, default: `${SERVICE_ACCOUNT_DIR}/token` },
                jwksRefresh: { type: 'duration', min: 1_000, default: '10m' },
                tokenReview: { type: 'boolean', default: true },
              },
            },
          },
        },
        tpm: TPM_ATTESTOR_SCHEMA,
      },
    },
    policies: { type: 'object', properties: { dir: { type: 'string', required: true, minLength: 1 } } },
    limits: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        maxRequestBytes: { type: 'number', integer: true, min: 1024, max: 4 << 20, default: 65_536 },
        handshakeTimeout: { type: 'duration', default: '10s', min: 100 },
        headersTimeout: { type: 'duration', default: '10s', min: 100 },
        maxConnections: { type: 'number', integer: true, min: 1, default: 4096 },
        maxStreamsPerId: { type: 'number', integer: true, min: 1, max: 1_000_000, default: DEFAULT_MAX_STREAMS_PER_ID, description: 'Open Config/Watch, Discovery/Watch and Register streams one SPIFFE ID may hold, each method apart' },
        streamOpensPerSecond: { type: 'number', integer: true, min: 1, max: 1_000_000, default: DEFAULT_STREAM_OPENS_PER_SECOND, description: 'Streams of one method one SPIFFE ID may open a second once its burst (maxStreamsPerId at once) is spent' },
      },
    },
    injector: INJECTOR_CONFIG_SCHEMA,
    federation: FEDERATION_SCHEMA,
    store: STORE_SCHEMA,
    discovery: {
      type: 'object',
      absentAsEmpty: true,
      description: 'The service registry proxies discover endpoints from (DESIGN.md section 11)',
      properties: {
        staticFile: { type: 'string', minLength: 1, description: 'YAML file of endpoints outside the mesh (services: { NAME: [ { address, spiffeId, ... } ] }), watched' },
        registrationGrace: { type: 'duration', default: '10s', min: 0, max: HOUR, description: 'How long self-registrations outlive their Register call; those a restart left are kept at least the proxies\' longest reconnect delay + 5 s (20 s) from ready' },
        maxServices: { type: 'number', integer: true, min: 1, max: MAX_VIEW_SERVICES, default: MAX_VIEW_SERVICES, description: 'Services the registry may hold (every source counted) before a self-registration of a new name is refused (TESSERA_ERR_DISCOVERY_REGISTRY_FULL); at most the 5,000 a proxy keeps' },
        maxServicesPerIdentity: { type: 'number', integer: true, min: 1, max: MAX_SERVICES_PER_ID_LIMIT, default: DEFAULT_MAX_SERVICES_PER_ID, description: 'Distinct service names one SPIFFE ID may self-register (its replicas together); a new name past it is refused (TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES)' },
        serviceIdentities: {
          type: 'map',
          maxKeys: 1000,
          keyCheck: (k) => (isServiceName(k) ? null : 'is not a service name ([a-z0-9.-]+, at most 253 characters)'),
          description: 'Service name → the SPIFFE ID patterns that may register its endpoints (Discovery/Register); a service not listed may be registered only by spiffe://<td>/ns/<ns|default>/sa/<name> for <name>[.<ns>]',
          values: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', format: 'id-pattern' } },
        },
        kubernetes: KUBERNETES_DISCOVERY_SCHEMA,
      },
    },
  },
};

/** The sidecar-injection webhook, present only when `injector.enabled` is true. */
export interface InjectorSettings {
  readonly listen: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly settings: InjectorConfig;
}

export interface ControlPlaneConfig {
  readonly file: string;
  readonly trustDomain: TrustDomain;
  readonly dataDir: string;
  readonly listen: string;
  readonly adminListen: string;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Audit rows older than keepMs are deleted from the store. */
  readonly audit: { readonly keepMs: number; readonly logMaxBytes: number };
  /** Inventory rows expired more than keepMs ago are deleted. */
  readonly inventory: { readonly keepMs: number };
  readonly svid: { readonly ttlMs: number; readonly maxTtlMs: number; readonly backdateMs: number; readonly rateLimit: { readonly burst: number; readonly perMinute: number } };
  readonly ca: { readonly root: 'managed' | 'offline'; readonly rootTtlMs: number; readonly intermediateTtlMs: number };
  readonly attestors: {
    readonly joinToken: { readonly enabled: boolean };
    readonly kubernetes?: {
      readonly issuer: string;
      readonly audience: string;
      readonly jwksFile: string;
      readonly apiServer?: { readonly url: string; readonly caFile: string; readonly tokenFile: string; readonly jwksRefreshMs: number; readonly tokenReview: boolean };
    };
    readonly tpm?: TpmAttestorConfig;
  };
  readonly policiesDir?: string;
  readonly limits: { readonly maxRequestBytes: number; readonly handshakeTimeoutMs: number; readonly headersTimeoutMs: number; readonly maxConnections: number; readonly maxStreamsPerId: number; readonly streamOpensPerSecond: number };
  readonly injector?: InjectorSettings;
  readonly federation?: FederationConfig;
  readonly discovery: DiscoverySettings;
  readonly store: StoreSettings;
}

/** The service registry's sources and the self-registration grace. */
export interface DiscoverySettings {
  readonly staticFile?: string;
  readonly registrationGraceMs: number;
  /** Services the registry may hold before a self-registration of a new name is refused. */
  readonly maxServices: number;
  /** Distinct service names one SPIFFE ID may self-register. */
  readonly maxServicesPerIdentity: number;
  /** Service → the SPIFFE ID patterns that may self-register it (others follow the naming rule, service-identities.ts). */
  readonly serviceIdentities: Readonly<Record<string, readonly string[]>>;
  /** Present only when `discovery.kubernetes.enabled` is true. */
  readonly kubernetes?: KubernetesDiscoveryConfig;
}

interface Raw {
  trustDomain: string;
  dataDir: string;
  listen: string;
  adminListen: string;
  logLevel: ControlPlaneConfig['logLevel'];
  // The sections marked absentAsEmpty are always here, with every default filled in (validate-yaml.ts): the
  // defaults are the schema's alone, never written again below.
  audit: { keep: number; logMaxBytes: number };
  inventory: { keep: number };
  svid: { ttl: number; maxTtl: number; backdate: number; rateLimit: { burst: number; perMinute: number } };
  ca: { root: 'managed' | 'offline'; rootTtl: number; intermediateTtl: number };
  attestors: {
    joinToken: { enabled: boolean };
    kubernetes?: { issuer: string; audience: string; jwksFile?: string; apiServer?: { url?: string; caFile: string; tokenFile: string; jwksRefresh: number; tokenReview: boolean } };
    tpm?: TpmAttestorInput;
  };
  policies?: { dir: string };
  limits: { maxRequestBytes: number; handshakeTimeout: number; headersTimeout: number; maxConnections: number; maxStreamsPerId: number; streamOpensPerSecond: number };
  injector?: InjectorConfigInput & { enabled: boolean; listen: string; certFile: string; keyFile: string };
  federation?: FederationInput;
  discovery: { staticFile?: string; registrationGrace: number; maxServices: number; maxServicesPerIdentity: number; serviceIdentities?: Record<string, string[]>; kubernetes: KubernetesDiscoveryInput };
  store: StoreInput;
}

/** Validates the text; throws TESSERA_ERR_CONFIG_INVALID / _UNREADABLE with file:line:key. */
export function parseControlPlaneConfig(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): ControlPlaneConfig {
  const parsed = parseYamlConfig<Raw>(text, file, controlPlaneSchema);
  const raw = parsed.value;
  const base = dirname(resolve(file));
  const svid = {
    ttlMs: raw.svid.ttl,
    maxTtlMs: raw.svid.maxTtl,
    backdateMs: raw.svid.backdate,
    rateLimit: { burst: raw.svid.rateLimit.burst, perMinute: raw.svid.rateLimit.perMinute },
  };
  // Two keys that must agree, one of them perhaps a default: the error names the one the file sets (a default is
  // nowhere in the file), and says which value is the default.
  const written = (...path: string[]) => isWritten(parsed, path);
  const invalid = (path: string[], message: string) => {
    const line = lineOf(parsed, path);
    const key = path.join('.');
    return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${message}`, { file, line, key });
  };
  const shown = (ms: number, path: string[]) => `${formatDuration(ms)}${written(...path) ? '' : ', the default'}`;
  if (svid.ttlMs > svid.maxTtlMs) {
    throw written('svid', 'ttl')
      ? invalid(['svid', 'ttl'], `${formatDuration(svid.ttlMs)} is longer than svid.maxTtl (${shown(svid.maxTtlMs, ['svid', 'maxTtl'])})`)
      : invalid(['svid', 'maxTtl'], `${formatDuration(svid.maxTtlMs)} is shorter than svid.ttl (${shown(svid.ttlMs, ['svid', 'ttl'])})`);
  }
  // Proxies renew at half the validity, which starts `backdate` before issue: at ttl < 2 x backdate that point is
  // under a quarter of ttl away (at ttl <= backdate, already past), and every proxy renews in a loop.
  if (svid.ttlMs < MIN_TTL_BACKDATES * svid.backdateMs) {
    const loop = 'proxies would renew at once, in a loop';
    throw written('svid', 'ttl')
      ? invalid(['svid', 'ttl'], `${formatDuration(svid.ttlMs)} is less than twice svid.backdate (${shown(svid.backdateMs, ['svid', 'backdate'])}): ${loop}`)
      : invalid(['svid', 'backdate'], `${formatDuration(svid.backdateMs)} is more than half of svid.ttl (${shown(svid.ttlMs, ['svid', 'ttl'])}): ${loop}`);
  }
  const ca = { root: raw.ca.root, rootTtlMs: raw.ca.rootTtl, intermediateTtlMs: raw.ca.intermediateTtl };
  if (ca.intermediateTtlMs > ca.rootTtlMs) {
    throw written('ca', 'intermediateTtl')
      ? invalid(['ca', 'intermediateTtl'], `longer than ca.rootTtl (${shown(ca.rootTtlMs, ['ca', 'rootTtl'])})`)
      : invalid(['ca', 'rootTtl'], `${formatDuration(ca.rootTtlMs)} is shorter than ca.intermediateTtl (${shown(ca.intermediateTtlMs, ['ca', 'intermediateTtl'])})`);
  }
  // Tiny limits would keep a handful of lines in two files: refused rather than quietly losing the trail.
  const auditLogMaxBytes = raw.audit.logMaxBytes;
  if (auditLogMaxBytes > 0 && auditLogMaxBytes < MIN_AUDIT_LOG_MAX_BYTES) {
    throw invalid(['audit', 'logMaxBytes'], `${auditLogMaxBytes} is under ${MIN_AUDIT_LOG_MAX_BYTES} (64 KiB); 0 turns the size limit off`);
  }
  const k8s = raw.attestors.kubernetes;
  if (k8s && !k8s.jwksFile && !k8s.apiServer) {
    const line = lineOf(parsed, ['attestors', 'kubernetes']);
    throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: attestors.kubernetes: needs jwksFile or apiServer (where the service-account keys come from)`, { file, line, key: 'attestors.kubernetes' });
  }
  const dataDir = resolve(base, raw.dataDir);
  const store = resolveStoreConfig(raw.store, base, (key, message) => invalid(key.split('.'), message));
  const k8sApi = k8s?.apiServer;
  const tpm = raw.attestors.tpm
    ? resolveTpmAttestorConfig(raw.attestors.tpm, base, (path, message) => {
        const line = lineOf(parsed, path);
        const key = path.join('.');
        return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${message}`, { file, line, key });
      })
    : undefined;
  let injector: InjectorSettings | undefined;
  if (raw.injector?.enabled) {
    const { enabled: _e, listen, certFile, keyFile, ...input } = raw.injector;
    try {
      injector = { listen, certFile: resolve(base, certFile), keyFile: resolve(base, keyFile), settings: resolveInjectorConfig(input) };
    } catch (e) {
      if (!isTesseraError(e, 'TESSERA_ERR_INJECT_BAD_CONFIG')) throw e;
      // The injector names its key ("injector.resources.limits.cpu"): point at that line of this file.
      const key = String(e.details['key'] ?? 'injector');
      const line = lineOf(parsed, key.split('.'));
      throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${e.message.replace(/^injector\.[^:]*: /, '')}`, { file, line, key });
    }
  }
  const federation = raw.federation ? resolveFederationConfig(raw.federation, raw.trustDomain, base, (path) => isWritten(parsed, path), (path, message, linePath = path) => {
    const line = lineOf(parsed, linePath);
    const key = path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').slice(1);
    return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${message}`, { file, line, key });
  }) : undefined;
  const k8sDiscovery = resolveKubernetesDiscovery(raw.discovery.kubernetes, base, env);
  return Object.freeze({
    file,
    trustDomain: TrustDomain.parse(raw.trustDomain),
    dataDir,
    listen: raw.listen,
    adminListen: raw.adminListen,
    logLevel: raw.logLevel,
    audit: { keepMs: raw.audit.keep, logMaxBytes: auditLogMaxBytes },
    inventory: { keepMs: raw.inventory.keep },
    svid,
    ca,
    attestors: {
      joinToken: { enabled: raw.attestors.joinToken.enabled },
      ...(k8s
        ? {
            kubernetes: {
              issuer: k8s.issuer,
              audience: k8s.audience,
              jwksFile: k8s.jwksFile ? resolve(base, k8s.jwksFile) : resolve(dataDir, 'k8s-jwks.json'),
              ...(k8sApi
                ? {
                    apiServer: {
                      url: apiServerUrl(k8sApi.url, env),
                      caFile: resolve(base, k8sApi.caFile),
                      tokenFile: resolve(base, k8sApi.tokenFile),
                      jwksRefreshMs: k8sApi.jwksRefresh,
                      tokenReview: k8sApi.tokenReview,
                    },
                  }
                : {}),
            },
          }
        : {}),
      ...(tpm ? { tpm } : {}),
    },
    ...(raw.policies ? { policiesDir: resolve(base, raw.policies.dir) } : {}),
    limits: {
      maxRequestBytes: raw.limits.maxRequestBytes,
      handshakeTimeoutMs: raw.limits.handshakeTimeout,
      headersTimeoutMs: raw.limits.headersTimeout,
      maxConnections: raw.limits.maxConnections,
      maxStreamsPerId: raw.limits.maxStreamsPerId,
      streamOpensPerSecond: raw.limits.streamOpensPerSecond,
    },
    ...(injector ? { injector } : {}),
    ...(federation ? { federation } : {}),
    store,
    discovery: {
      ...(raw.discovery.staticFile ? { staticFile: resolve(base, raw.discovery.staticFile) } : {}),
      registrationGraceMs: raw.discovery.registrationGrace,
      maxServices: raw.discovery.maxServices,
      maxServicesPerIdentity: raw.discovery.maxServicesPerIdentity,
      serviceIdentities: raw.discovery.serviceIdentities ?? {},
      ...(k8sDiscovery ? { kubernetes: k8sDiscovery } : {}),
    },
  });
}

export function loadControlPlaneConfig(file: string): ControlPlaneConfig {
  const text = readConfigText({ path: file, what: 'config' });
  return parseControlPlaneConfig(text, file);
}
