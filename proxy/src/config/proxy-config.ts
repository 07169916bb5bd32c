// The proxy's config file (DESIGN.md section 8): schema, defaults, relative paths resolved against the file's
// directory, and the cross-key checks a schema cannot express (unique names and ports). Errors name
// file:line and key.

import { dirname, resolve } from 'node:path';
import { addressesOverlap } from '../../../common/config/address-overlap.js';
import type { ObjectSchema, Schema } from '../../../common/config/schema.js';
import { isWritten, keyText, lineOf, parseAddress, parseYamlConfig } from '../../../common/config/validate-yaml.js';
import { TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { notADirectory } from '../../../shared-io/policy-dir-source.js';
import { readConfigText } from '../../../shared-io/read-named-file.js';
import type { AppProbe } from '../admin/app-probe.js';
import { DEFAULT_UPGRADES, upgradeConfigProblem } from '../http1/upgrade-offer.js';
import type { Address } from './address.js';
import { type EdgeConfig, edgeSchema, type RawEdge, resolveEdge } from './edge-config.js';
import { type ExchangeLimits, exchangeLimitKeys, exchangeLimits } from './exchange-limits.js';
import { type IdentityConfig, identitySchema, type RawIdentity, resolveIdentity } from './identity-config.js';
import {
  limitsSchema,
  type ProxyLimits,
  type RawLimits,
  type RawTransport,
  resolveLimits,
  resolveTransport,
  type TransportSettings,
  transportSchema,
} from './limits-config.js';
import {
  inboundRoutingKeys,
  type OutboundRoute,
  outboundRoutingKeys,
  type RawRouting,
  type Registration,
  type RoutingSettings,
  resolveRouting,
  routingSchema,
} from './routing-config.js';

export type Protocol = 'http' | 'http2' | 'grpc' | 'tcp';
export type { Address } from './address.js';
export type { IdentityConfig } from './identity-config.js';
export type { ProxyLimits, TransportSettings } from './limits-config.js';
export type { OutboundRoute, Registration, RoutingSettings } from './routing-config.js';

export interface InboundConfig extends ExchangeLimits {
  readonly name: string;
  readonly listen: Address;
  readonly forwardTo: Address;
  readonly protocol: Protocol;
  readonly tlsMinVersion: '1.2' | '1.3';
  /** strict: mTLS only. permissive: mTLS and plaintext on the same port, told apart by the first bytes (migration). */
  readonly mtls: 'strict' | 'permissive';
  /** Total time allowed for one request and its whole response; absent = no total (streams run while they move). */
  readonly timeoutMs?: number;
  /** `service:`: this listener registers itself as an endpoint of that service. */
  readonly registration?: Registration;
}

export interface OutboundConfig extends ExchangeLimits {
  readonly name: string;
  readonly listen: Address;
  /** A fixed upstream, a discovered service, or any service by host (mode: http-proxy). */
  readonly route: OutboundRoute;
  readonly protocol: Protocol;
  /** Total time allowed for one request and its whole response; absent = no total (streams run while they move). */
  readonly timeoutMs?: number;
  /** Retry every method on 5xx/reset (a body within routing.retry.bufferBytes), not only the idempotent ones. */
  readonly retryable: boolean;
}

export interface ProxyConfig {
  readonly file: string;
  readonly identity: IdentityConfig;
  readonly inbound: readonly InboundConfig[];
  readonly outbound: readonly OutboundConfig[];
  readonly edge: readonly EdgeConfig[];
  /** The protocols (lower-case) an HTTP/1.1 upgrade may switch to, on every listener; other offers are dropped. */
  readonly upgrades: readonly string[];
  readonly authorization: { readonly policiesDir?: string; readonly defaultAction: 'deny' | 'allow' };
  /** appProbes: the app's kubelet probes relayed at /app-health/<name> (written by the Kubernetes injector). */
  readonly admin: { readonly listen: Address; readonly appProbes: Readonly<Record<string, AppProbe>> };
  readonly workloadApi?: { readonly socket: string };
  /** tracing: only the keys the file sets (unset ones come from OTEL_* variables or defaults, telemetry/tracing-settings.ts). */
  readonly telemetry: {
    readonly accessLog: string;
    readonly tracing: { readonly otlpEndpoint?: string; readonly samplerRatio?: number; readonly serviceName?: string };
  };
  readonly limits: ProxyLimits;
  readonly transport: TransportSettings;
  /** Balancing, retries, outlier ejection and slow start of outbound listeners routed to services. */
  readonly routing: RoutingSettings;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Listener processes sharing the ports (SO_REUSEPORT) behind one primary; 1 = one process (docs/workers.md). */
  readonly workers: number;
}

const protocol: Schema = { type: 'string', enum: ['http', 'http2', 'grpc', 'tcp'], default: 'http' };
const timeout: Schema = {
  type: 'duration',
  min: 100,
  description: 'Total time for one request and its whole response; unset: no total, a stream runs while it makes progress',
};
const name: Schema = {
  type: 'string',
  required: true,
  minLength: 1,
  check: (v) => (/^[a-z0-9][a-z0-9-]{0,62}$/.test(v) ? null : 'must be lower-case letters, digits and "-"'),
};

/** Keys every sidecar listener has. */
const listenerKeys: Record<string, Schema> = { name, listen: { type: 'string', format: 'address', required: true }, protocol, timeout, ...exchangeLimitKeys };

export const proxySchema: ObjectSchema = {
  type: 'object',
  properties: {
    identity: identitySchema,
    inbound: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          ...listenerKeys,
          forwardTo: { type: 'string', format: 'address', required: true },
          tlsMinVersion: { type: 'string', enum: ['1.2', '1.3'], default: '1.3' },
          mtls: {
            type: 'string',
            enum: ['strict', 'permissive'],
            default: 'strict',
            description: 'permissive: also accept plaintext callers (as unauthenticated) on the same port, for a migration',
          },
          ...inboundRoutingKeys,
        },
      },
    },
    outbound: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          ...listenerKeys,
          ...outboundRoutingKeys,
        },
      },
    },
    edge: edgeSchema,
    upgrades: {
      type: 'array',
      maxItems: 32,
      items: { type: 'string', check: upgradeConfigProblem },
      description: `Protocols an HTTP/1.1 Upgrade may switch to, compared without case (default ${DEFAULT_UPGRADES.join(', ')}); other offers are dropped`,
    },
    authorization: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        policiesDir: { type: 'string', minLength: 1 },
        defaultAction: { type: 'string', enum: ['deny', 'allow'], default: 'deny' },
      },
    },
    admin: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        listen: { type: 'string', format: 'address', default: '127.0.0.1:15000' },
        appProbes: {
          type: 'map',
          description: "The app's kubelet probes, relayed to the app on 127.0.0.1 at GET /app-health/<name> (the injector writes these)",
          values: {
            type: 'object',
            properties: {
              port: { type: 'number', integer: true, min: 1, max: 65535, required: true },
              tcp: { type: 'boolean', default: false },
              path: { type: 'string', minLength: 1, default: '/' },
              scheme: { type: 'string', enum: ['HTTP', 'HTTPS'], default: 'HTTP' },
              timeout: { type: 'duration', min: 100, max: 60_000, default: '1s' },
              headers: { type: 'map', values: { type: 'string' } },
            },
          },
        },
      },
    },
    workloadApi: { type: 'object', properties: { socket: { type: 'string', required: true, minLength: 1 } } },
    telemetry: {
      type: 'object',
      absentAsEmpty: true,
      properties: {
        accessLog: { type: 'string', minLength: 1, default: 'stdout', description: 'stdout, off, or a file path' },
        tracing: {
          type: 'object',
          properties: {
            otlpEndpoint: { type: 'string', format: 'url' },
            samplerRatio: { type: 'number', min: 0, max: 1 },
            serviceName: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    limits: limitsSchema,
    transport: transportSchema,
    routing: routingSchema,
    logLevel: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
    workers: {
      type: 'number',
      integer: true,
      min: 1,
      max: 64,
      default: 1,
      description: 'Listener processes sharing the listen ports (SO_REUSEPORT, Linux) under one primary that owns identity and admin',
    },
  },
};

// As the schema gives them: a listener's keys with their defaults filled in (inbound-only and outbound-only keys
// optional), and the sections marked absentAsEmpty always present. No default is written again below.
interface RawListener {
  name: string;
  listen: string;
  forwardTo?: string;
  upstream?: string;
  spiffeId?: string;
  protocol: Protocol;
  tlsMinVersion?: '1.2' | '1.3';
  mtls?: 'strict' | 'permissive';
  timeout?: number;
  requestTimeout?: number;
  minRequestBodyRate?: number;
  service?: string;
  advertise?: string;
  zone?: string;
  weight?: number;
  mode?: 'direct' | 'http-proxy';
  retryable?: boolean;
}
interface Raw {
  identity: RawIdentity;
  inbound?: (RawListener & { forwardTo: string; tlsMinVersion: '1.2' | '1.3'; mtls: 'strict' | 'permissive' })[];
  outbound?: (RawListener & { mode: 'direct' | 'http-proxy'; retryable: boolean })[];
  edge?: RawEdge[];
  upgrades?: string[];
  authorization: { policiesDir?: string; defaultAction: 'deny' | 'allow' };
  admin: {
    listen: string;
    appProbes?: Record<string, { port: number; tcp: boolean; path: string; scheme: 'HTTP' | 'HTTPS'; timeout: number; headers?: Record<string, string> }>;
  };
  workloadApi?: { socket: string };
  telemetry: { accessLog: string; tracing?: { otlpEndpoint?: string; samplerRatio?: number; serviceName?: string } };
  transport: RawTransport;
  limits: RawLimits;
  routing: RawRouting;
  logLevel: ProxyConfig['logLevel'];
  workers: number;
}

function addr(text: string): Address {
  const a = parseAddress(text);
  if (!a) throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `bad address ${text}`); // the schema already checked it
  return a;
}

export function parseProxyConfig(text: string, file: string): ProxyConfig {
  const parsed = parseYamlConfig<Raw>(text, file, proxySchema);
  const raw = parsed.value;
  const base = dirname(resolve(file));
  const path = (p: string) => resolve(base, p);
  const problem = (keyPath: (string | number)[], message: string): never => {
    const line = lineOf(parsed, keyPath);
    const key = keyText(keyPath);
    throw new TesseraError('TESSERA_ERR_CONFIG_INVALID', `${file}:${line}: ${key}: ${message}`, { file, line, key });
  };

  const inbound: InboundConfig[] = (raw.inbound ?? []).map((l, i) => {
    if (!l.service && (l.advertise || l.zone || l.weight !== undefined))
      problem(['inbound', i, l.advertise ? 'advertise' : l.zone ? 'zone' : 'weight'], 'only meaningful with service:');
    const registration = l.service
      ? { service: l.service, ...(l.advertise ? { advertise: addr(l.advertise) } : {}), zone: l.zone ?? '', weight: l.weight ?? 100 }
      : undefined;
    return {
      name: l.name,
      listen: addr(l.listen),
      forwardTo: addr(l.forwardTo),
      protocol: l.protocol,
      tlsMinVersion: l.tlsMinVersion,
      mtls: l.mtls,
      ...(l.timeout ? { timeoutMs: l.timeout } : {}),
      ...exchangeLimits(l),
      ...(registration ? { registration } : {}),
    };
  });
  const outbound: OutboundConfig[] = (raw.outbound ?? []).map((l, i) => ({
    name: l.name,
    listen: addr(l.listen),
    route: outboundRoute(l, i, problem),
    protocol: l.protocol,
    ...(l.timeout ? { timeoutMs: l.timeout } : {}),
    ...exchangeLimits(l),
    retryable: l.retryable,
  }));
  const edge = resolveEdge(raw.edge ?? [], base, problem);
  // A sidecar that only hands its SVID to the app (the Workload API) needs no listener: an injected pod that
  // declares no ports gets one.
  if (inbound.length + outbound.length + edge.length === 0 && !raw.workloadApi)
    problem(['inbound'], 'at least one inbound, outbound or edge listener is required, or workloadApi (a sidecar that only serves the SVID)');

  const names = new Set<string>();
  const ports = new Map<number, string>();
  // The admin listener's address against every listener's too (at the admin key's line, naming the listener's).
  const adminListen = addr(raw.admin.listen);
  for (const [section, list] of [
    ['inbound', inbound],
    ['outbound', outbound],
    ['edge', edge],
  ] as const) {
    list.forEach((l, i) => {
      if (names.has(`${section}/${l.name}`)) problem([section, i, 'name'], `"${l.name}" is used twice`);
      names.add(`${section}/${l.name}`);
      if (l.listen.port !== 0 && ports.has(l.listen.port))
        problem([section, i, 'listen'], `port ${l.listen.port} is already used by ${ports.get(l.listen.port)}`);
      ports.set(l.listen.port, `${section} "${l.name}"`);
      if (addressesOverlap(adminListen, l.listen))
        problem(['admin', 'listen'], `${raw.admin.listen}${isWritten(parsed, ['admin', 'listen']) ? '' : ' (the default)'} takes the address of ${section} "${l.name}" (${section}[${i}].listen ${l.listen.host}:${l.listen.port}, line ${lineOf(parsed, [section, i, 'listen'])})`);
    });
  }
  inbound.forEach((l, i) => {
    // Plaintext HTTP/2 (h2c prior knowledge) is not detected: such a listener would refuse plaintext callers anyway.
    if (l.mtls === 'permissive' && (l.protocol === 'http2' || l.protocol === 'grpc')) {
      problem(['inbound', i, 'mtls'], `permissive is supported for protocol http and tcp, not ${l.protocol} (plaintext HTTP/2 is not detected)`);
    }
  });
  outbound.forEach((o, i) => {
    if (o.listen.host !== '127.0.0.1' && o.listen.host !== '::1' && o.listen.host !== 'localhost') {
      problem(['outbound', i, 'listen'], 'outbound listeners accept plaintext and must bind to loopback');
    }
  });

  const id = raw.identity;
  if (!id.controlPlane) {
    // Endpoints come from the control plane's registry, and registrations go to it.
    const i = outbound.findIndex((o) => o.route.kind !== 'static');
    if (i >= 0)
      problem(
        ['outbound', i, outbound[i]!.route.kind === 'service' ? 'service' : 'mode'],
        'routing to services needs identity.controlPlane (discovery comes from it)',
      );
    const j = inbound.findIndex((l) => l.registration);
    if (j >= 0) problem(['inbound', j, 'service'], 'registering a service needs identity.controlPlane');
  }
  const identity = resolveIdentity(id, base, problem, (keyPath) => ({ file, line: lineOf(parsed, keyPath) }));
  if (id.controlPlane && raw.authorization.policiesDir) {
    problem(['authorization', 'policiesDir'], 'not allowed with identity.controlPlane: policies come from the control plane');
  }
  // A file where the directory should be is a mistake found here, at its key and line (a missing one is reported by
  // the policy loader, which also watches for it).
  const notDir = raw.authorization.policiesDir ? notADirectory(path(raw.authorization.policiesDir)) : undefined;
  if (notDir !== undefined) problem(['authorization', 'policiesDir'], `${path(raw.authorization!.policiesDir!)} is ${notDir}`);
  const transport = resolveTransport(raw.transport, problem);
  const tracing = raw.telemetry.tracing;
  const { accessLog } = raw.telemetry;
  return Object.freeze({
    file,
    identity,
    inbound,
    outbound,
    edge,
    upgrades: [...new Set((raw.upgrades ?? DEFAULT_UPGRADES).map((p) => p.toLowerCase()))],
    authorization: {
      ...(raw.authorization.policiesDir ? { policiesDir: path(raw.authorization.policiesDir) } : {}),
      defaultAction: raw.authorization.defaultAction,
    },
    admin: {
      listen: adminListen,
      appProbes: Object.fromEntries(
        Object.entries(raw.admin.appProbes ?? {}).map(([name, p]) => [
          name,
          { port: p.port, tcp: p.tcp, path: p.path, scheme: p.scheme, timeoutMs: p.timeout, headers: p.headers ?? {} },
        ]),
      ),
    },
    ...(raw.workloadApi ? { workloadApi: { socket: path(raw.workloadApi.socket) } } : {}),
    telemetry: {
      accessLog: accessLog === 'stdout' || accessLog === 'off' ? accessLog : path(accessLog),
      tracing: {
        ...(tracing?.otlpEndpoint ? { otlpEndpoint: tracing.otlpEndpoint } : {}),
        ...(tracing?.samplerRatio !== undefined ? { samplerRatio: tracing.samplerRatio } : {}),
        ...(tracing?.serviceName ? { serviceName: tracing.serviceName } : {}),
      },
    },
    limits: resolveLimits(raw.limits),
    transport,
    routing: resolveRouting(raw.routing),
    logLevel: raw.logLevel,
    workers: raw.workers,
  });
}

/** Exactly one of upstream (+ spiffeId), service, or mode: http-proxy. */
function outboundRoute(l: RawListener, i: number, problem: (keyPath: (string | number)[], message: string) => never): OutboundRoute {
  const proxyMode = l.mode === 'http-proxy';
  const set = [l.upstream !== undefined, l.service !== undefined, proxyMode].filter(Boolean).length;
  if (set !== 1)
    problem(
      ['outbound', i, set === 0 ? 'upstream' : proxyMode ? 'mode' : 'service'],
      'set exactly one of upstream (with spiffeId), service, or mode: http-proxy',
    );
  if (l.upstream !== undefined) {
    if (!l.spiffeId) problem(['outbound', i, 'spiffeId'], 'required with upstream: the SPIFFE ID the upstream must present');
    return { kind: 'static', upstream: addr(l.upstream), spiffeId: SpiffeId.parse(l.spiffeId!) };
  }
  if (l.spiffeId) problem(['outbound', i, 'spiffeId'], "only with upstream: a service's endpoints each bring their SPIFFE ID from discovery");
  if (proxyMode) {
    if (l.protocol !== 'http')
      problem(['outbound', i, 'protocol'], 'mode: http-proxy speaks HTTP/1.1 to the app (CONNECT carries any other protocol): protocol must be http');
    return { kind: 'http-proxy' };
  }
  return { kind: 'service', service: l.service! };
}

export function loadProxyConfig(file: string): ProxyConfig {
  const text = readConfigText({ path: file, what: 'config' });
  return parseProxyConfig(text, file);
}
