// The injector's settings (image, control-plane address, sidecar resources…): defaults, validation, schema.
import { isIPv4, isIPv6 } from 'node:net';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { TesseraError } from '../../../common/errors.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface SidecarResources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly cpu?: string; readonly memory: string };
}

export interface InjectorConfig {
  /** The Tessera image the sidecar runs (its entrypoint is `tessera`). */
  readonly proxyImage: string;
  readonly imagePullPolicy: PullPolicy;
  /** host:port of the control plane's gRPC listener, e.g. tessera-control-plane.tessera-system.svc:8443. */
  readonly controlPlaneAddress: string;
  /** Written to the tessera.dev/injected annotation. */
  readonly version: string;
  /** Audience of the projected service-account token (the control plane's kubernetes attestor expects it). */
  readonly tokenAudience: string;
  /** Lifetime the kubelet asks for; it refreshes the file at 80 %. Kubernetes requires >= 600. */
  readonly tokenExpirationSeconds: number;
  /** Address the sidecar's inbound and admin listeners bind in the pod ("0.0.0.0", or "[::]" for IPv6). */
  readonly podBindAddress: string;
  readonly resources: SidecarResources;
}

export type InjectorConfigInput = Partial<Omit<InjectorConfig, 'resources'>> & {
  readonly proxyImage: string;
  readonly controlPlaneAddress: string;
  readonly resources?: { readonly requests?: Partial<SidecarResources['requests']>; readonly limits?: Partial<SidecarResources['limits']> };
};

export const INJECTOR_DEFAULTS = Object.freeze({
  imagePullPolicy: 'IfNotPresent' as PullPolicy,
  version: 'unknown',
  tokenAudience: 'tessera',
  tokenExpirationSeconds: 3600,
  podBindAddress: '0.0.0.0',
  // Measured (deploy/k8s/measure-idle-rss.sh, docs/kubernetes.md "Resources"): an attested sidecar with one inbound
  // and one outbound listener idles at ~82 MiB VmRSS (~101 before the idle diet), ~95–99 MiB at 300 req/s; saturating load peaks ~160 MiB.
  resources: Object.freeze({ requests: Object.freeze({ cpu: '50m', memory: '128Mi' }), limits: Object.freeze({ memory: '256Mi' }) }),
});

// Kubernetes resource.Quantity as its parser takes it: binary suffixes Ki…Ei, decimal n u m k M G T P E (lower-case
// k only), or an integer exponent. Groups: sign, integer digits, fraction digits, suffix.
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d{1,3}|)$/;
const BINARY = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n } as Record<string, bigint>;
const DECIMAL = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 } as Record<string, number>;
// An image reference: no blanks or control characters, lower-case repository, optional tag/digest.
const IMAGE = /^[a-z0-9][a-z0-9._\-/:]*(?:@sha256:[a-f0-9]{64})?$/;

function fail(key: string, message: string): never {
  throw new TesseraError('TESSERA_ERR_INJECT_BAD_CONFIG', `injector.${key}: ${message}`, { key: `injector.${key}` });
}

/** An exact quantity value as a fraction `num / den` (BigInt), for the sign and the limit/request comparison. */
interface Amount {
  readonly num: bigint;
  readonly den: bigint;
}

/** Parses a quantity; undefined when it is not Kubernetes' grammar (a number needs at least one digit). */
export function parseQuantity(text: string): Amount | undefined {
  const m = QUANTITY.exec(text);
  if (!m || (m[2] === '' && !m[3])) return undefined;
  const [, sign, whole, frac = '', suffix = ''] = m;
  let num = BigInt(`${whole}${frac}` || '0') * (sign === '-' ? -1n : 1n);
  let den = 10n ** BigInt(frac.length);
  // `E` alone is exa; `e`/`E` with digits an exponent.
  const exp = /^[eE]./.test(suffix) ? Number(suffix.slice(1)) : DECIMAL[suffix];
  if (exp === undefined) num <<= BINARY[suffix]!;
  else if (exp >= 0) num *= 10n ** BigInt(exp);
  else den *= 10n ** BigInt(-exp);
  return { num, den };
}

const compare = (a: Amount, b: Amount): number => Number(a.num * b.den - b.num * a.den);

/**
 * A request or limit the API server would take: Kubernetes' grammar and not negative. A value it refuses (audit 32a
 * F4) would otherwise be patched into every injected pod, and every such pod's creation would fail.
 */
function quantity(key: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const amount = parseQuantity(v);
  if (!amount) fail(key, `"${v}" is not a Kubernetes quantity (e.g. 50m, 64Mi)`);
  if (amount.num < 0n) fail(key, `"${v}" is negative; Kubernetes refuses a pod with a negative request or limit`);
  return v;
}

/** Kubernetes refuses a container whose limit is below its request; the key named is one the input set. */
function limitCoversRequest(resource: 'cpu' | 'memory', request: string, limit: string | undefined, given: { request: boolean; limit: boolean }): void {
  if (limit === undefined || compare(parseQuantity(limit)!, parseQuantity(request)!) >= 0) return;
  const key = given.limit || !given.request ? `resources.limits.${resource}` : `resources.requests.${resource}`;
  const what = (side: string, v: string, set: boolean) => `${side} ${v}${set ? '' : ' (the default)'}`;
  fail(key, `the ${resource} ${what('limit', limit, given.limit)} is below its ${what('request', request, given.request)}; Kubernetes refuses such a pod`);
}

/** A literal IP address: IPv4, or IPv6 in brackets ("[::]"), as the sidecar's listen addresses take it. */
function isBindAddress(text: string): boolean {
  return text.startsWith('[') ? text.endsWith(']') && isIPv6(text.slice(1, -1)) : isIPv4(text);
}

/** Fills defaults and checks every field; the result is frozen. */
export function resolveInjectorConfig(input: InjectorConfigInput): InjectorConfig {
  if (!IMAGE.test(input.proxyImage)) fail('proxyImage', `"${input.proxyImage}" is not an image reference`);
  if (!parseAddress(input.controlPlaneAddress)) fail('controlPlaneAddress', `"${input.controlPlaneAddress}" is not host:port`);
  const pull = input.imagePullPolicy ?? INJECTOR_DEFAULTS.imagePullPolicy;
  if (!['Always', 'IfNotPresent', 'Never'].includes(pull)) fail('imagePullPolicy', `"${pull}" is not Always, IfNotPresent or Never`);
  const exp = input.tokenExpirationSeconds ?? INJECTOR_DEFAULTS.tokenExpirationSeconds;
  if (!Number.isInteger(exp) || exp < 600 || exp > 4_294_967_295) fail('tokenExpirationSeconds', `${exp} must be an integer >= 600`);
  const audience = input.tokenAudience ?? INJECTOR_DEFAULTS.tokenAudience;
  if (audience.trim() === '') fail('tokenAudience', 'is empty');
  const bind = input.podBindAddress ?? INJECTOR_DEFAULTS.podBindAddress;
  if (!isBindAddress(bind)) fail('podBindAddress', `"${bind}" is not an IP address (IPv4, or IPv6 in brackets: "[::]")`);
  const version = input.version ?? INJECTOR_DEFAULTS.version;
  if (!/^[A-Za-z0-9._+-]{1,63}$/.test(version)) fail('version', `"${version}" is not a short version string`);
  const d = INJECTOR_DEFAULTS.resources;
  const r = input.resources ?? {};
  const cpuLimit = quantity('resources.limits.cpu', r.limits?.cpu);
  const resources: SidecarResources = {
    requests: {
      cpu: quantity('resources.requests.cpu', r.requests?.cpu) ?? d.requests.cpu,
      memory: quantity('resources.requests.memory', r.requests?.memory) ?? d.requests.memory,
    },
    limits: { memory: quantity('resources.limits.memory', r.limits?.memory) ?? d.limits.memory, ...(cpuLimit ? { cpu: cpuLimit } : {}) },
  };
  // Checked on the values in force, defaults included: a 512Mi request alone is above the default 256Mi limit.
  for (const res of ['cpu', 'memory'] as const) {
    limitCoversRequest(res, resources.requests[res], resources.limits[res], { request: r.requests?.[res] !== undefined, limit: r.limits?.[res] !== undefined });
  }
  return Object.freeze({
    proxyImage: input.proxyImage,
    imagePullPolicy: pull,
    controlPlaneAddress: input.controlPlaneAddress,
    version,
    tokenAudience: audience,
    tokenExpirationSeconds: exp,
    podBindAddress: bind,
    resources: Object.freeze(resources),
  });
}

/** Where the webhook listens unless `listen` says otherwise (the control plane's block and `tessera injector`'s file). */
const INJECTOR_LISTEN = '0.0.0.0:9443';

/**
 * Schema of the control plane's `injector:` config block (common/config/schema.ts), for the control-plane
 * config owner to embed. Files are paths to the webhook's serving certificate (a Kubernetes TLS Secret).
 */
export const INJECTOR_CONFIG_SCHEMA: ObjectSchema = {
  type: 'object',
  description: 'Sidecar-injection webhook served by the control plane (Kubernetes only).',
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: { type: 'string', format: 'address', default: INJECTOR_LISTEN },
    certFile: { type: 'string', format: 'path', required: true },
    keyFile: { type: 'string', format: 'path', required: true },
    proxyImage: { type: 'string', minLength: 1, required: true },
    imagePullPolicy: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'], default: INJECTOR_DEFAULTS.imagePullPolicy },
    controlPlaneAddress: { type: 'string', format: 'address', required: true },
    tokenAudience: { type: 'string', minLength: 1, default: INJECTOR_DEFAULTS.tokenAudience },
    tokenExpirationSeconds: { type: 'number', integer: true, min: 600, default: INJECTOR_DEFAULTS.tokenExpirationSeconds },
    podBindAddress: { type: 'string', default: INJECTOR_DEFAULTS.podBindAddress },
    resources: {
      type: 'object',
      properties: {
        requests: { type: 'object', properties: { cpu: { type: 'string' }, memory: { type: 'string' } } },
        limits: { type: 'object', properties: { cpu: { type: 'string' }, memory: { type: 'string' } } },
      },
    },
  },
};
