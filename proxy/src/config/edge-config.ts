// The `edge` section of the proxy config: TLS for outside clients (files, SNI certificates, optional client
// certificates), HSTS, trusted proxies, and host/path routes to mesh upstreams. Schema and resolution.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Schema } from '../../../common/config/schema.js';
import { parseAddress } from '../../../common/config/validate-yaml.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { Address } from './address.js';
import { type ExchangeLimits, exchangeLimitKeys, exchangeLimits, type RawExchangeLimits } from './exchange-limits.js';

/**
 * An entry of edge[].trustedProxies: an IP address (v4 or v6) or an IPv4 CIDR whose prefix is 0-32 bits. Anything
 * else would be read as a wider range than written (a /33 matched half of IPv4, an IPv6 CIDR all of it).
 */
function trustedProxyProblem(v: string): string | null {
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v) ? null : 'must be an IP address or an IPv4 CIDR';
  const bits = v.slice(slash + 1);
  if (isIP(v.slice(0, slash)) !== 4) return 'a CIDR must be IPv4 (list IPv6 proxies by address)';
  return /^\d{1,2}$/.test(bits) && Number(bits) <= 32 ? null : 'an IPv4 CIDR prefix is 0 to 32 bits';
}

export interface EdgeRouteConfig extends ExchangeLimits {
  readonly host: string;
  readonly pathPrefix: string;
  readonly upstream: Address;
  /** Required unless unsafePlaintext. */
  readonly spiffeId?: SpiffeId;
  readonly unsafePlaintext: boolean;
  /** How the edge speaks to this upstream: HTTP/1.1, or one multiplexed HTTP/2 connection (http2, grpc). */
  readonly protocol: 'http' | 'http2' | 'grpc';
  /** Total time for one request and its whole response; absent = no total (streams run while they move). */
  readonly timeoutMs?: number;
}

export interface EdgeConfig {
  readonly name: string;
  readonly listen: Address;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certificates: readonly { readonly serverNames: readonly string[]; readonly certFile: string; readonly keyFile: string }[];
  readonly clientCa?: string;
  /**
   * The only trust domain whose SPIFFE IDs clients of `clientCa` may assert (never a mesh trust domain). Unset:
   * outside clients get no SPIFFE ID at all and are known by certificate subject and hash.
   */
  readonly clientTrustDomain?: TrustDomain;
  readonly clientCert: 'required' | 'optional';
  /** Evaluate authorization policies for edge requests (default: on when client certificates are checked). */
  readonly authorize: boolean;
  readonly tlsMinVersion: '1.2' | '1.3';
  /** Strict-Transport-Security max-age in seconds; 0 = no header. */
  readonly hstsMaxAge: number;
  readonly trustedProxies: readonly string[];
  readonly routes: readonly EdgeRouteConfig[];
}

const hostPattern = (v: string): string | null => (v === '*' || /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(v) ? null : 'must be a lower-case host name, "*.suffix" or "*"');

export const edgeSchema: Schema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      name: { type: 'string', required: true, minLength: 1 },
      listen: { type: 'string', format: 'address', required: true },
      certFile: { type: 'string', required: true, minLength: 1 },
      keyFile: { type: 'string', required: true, minLength: 1 },
      certificates: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            serverNames: { type: 'array', required: true, minItems: 1, items: { type: 'string', check: hostPattern } },
            certFile: { type: 'string', required: true, minLength: 1 },
            keyFile: { type: 'string', required: true, minLength: 1 },
          },
        },
      },
      clientCa: { type: 'string', minLength: 1 },
      clientTrustDomain: { type: 'string', format: 'trust-domain', description: 'The one trust domain whose SPIFFE IDs clients of clientCa may assert, e.g. partner.example' },
      clientCert: { type: 'string', enum: ['required', 'optional'], default: 'required' },
      authorize: { type: 'boolean' },
      tlsMinVersion: { type: 'string', enum: ['1.2', '1.3'], default: '1.2' },
      hstsMaxAge: { type: 'number', integer: true, min: 0, default: 0 },
      trustedProxies: { type: 'array', items: { type: 'string', check: trustedProxyProblem } },
      routes: {
        type: 'array',
        required: true,
        minItems: 1,
        items: {
          type: 'object',
          properties: {
            host: { type: 'string', default: '*', check: hostPattern },
            pathPrefix: { type: 'string', default: '/', check: (v) => (v.startsWith('/') ? null : 'must start with "/"') },
            upstream: { type: 'string', format: 'address', required: true },
            spiffeId: { type: 'string', format: 'spiffe-id' },
            unsafePlaintext: { type: 'boolean', default: false },
            protocol: { type: 'string', enum: ['http', 'http2', 'grpc'], default: 'http', description: 'How the edge speaks to the upstream' },
            timeout: { type: 'duration', min: 100, description: 'Total time for one request and its whole response; unset: no total, a stream runs while it makes progress' },
            ...exchangeLimitKeys,
          },
        },
      },
    },
  },
};

export interface RawEdge {
  name: string;
  listen: string;
  certFile: string;
  keyFile: string;
  certificates?: { serverNames: string[]; certFile: string; keyFile: string }[];
  clientCa?: string;
  clientTrustDomain?: string;
  clientCert: 'required' | 'optional';
  authorize?: boolean;
  tlsMinVersion: '1.2' | '1.3';
  hstsMaxAge: number;
  trustedProxies?: string[];
  routes: ({ host: string; pathPrefix: string; upstream: string; spiffeId?: string; unsafePlaintext: boolean; protocol: 'http' | 'http2' | 'grpc'; timeout?: number } & RawExchangeLimits)[];
}

/** Resolves paths against `base`; `problem(path, message)` reports a cross-key error at its line. */
export function resolveEdge(raw: readonly RawEdge[], base: string, problem: (path: (string | number)[], message: string) => never): EdgeConfig[] {
  return raw.map((e, i) => {
    if (e.clientTrustDomain !== undefined && e.clientCa === undefined) problem(['edge', i, 'clientTrustDomain'], 'needs clientCa: it names what the clients of that CA may assert');
    return {
      name: e.name,
      listen: parseAddress(e.listen)!,
      certFile: resolve(base, e.certFile),
      keyFile: resolve(base, e.keyFile),
      certificates: (e.certificates ?? []).map((c) => ({ serverNames: c.serverNames, certFile: resolve(base, c.certFile), keyFile: resolve(base, c.keyFile) })),
      ...(e.clientCa ? { clientCa: resolve(base, e.clientCa) } : {}),
      ...(e.clientTrustDomain ? { clientTrustDomain: TrustDomain.parse(e.clientTrustDomain) } : {}),
      clientCert: e.clientCert,
      authorize: e.authorize ?? e.clientCa !== undefined,
      tlsMinVersion: e.tlsMinVersion,
      hstsMaxAge: e.hstsMaxAge,
      trustedProxies: e.trustedProxies ?? [],
      routes: e.routes.map((r, j) => {
        const { unsafePlaintext } = r;
        if (!unsafePlaintext && !r.spiffeId) problem(['edge', i, 'routes', j, 'spiffeId'], 'required: the SPIFFE ID the upstream must present (or unsafePlaintext: true)');
        if (unsafePlaintext && r.spiffeId) problem(['edge', i, 'routes', j, 'unsafePlaintext'], 'a plaintext route cannot check a SPIFFE ID; remove one of them');
        return { host: r.host, pathPrefix: r.pathPrefix, upstream: parseAddress(r.upstream)!, ...(r.spiffeId ? { spiffeId: SpiffeId.parse(r.spiffeId) } : {}), unsafePlaintext, protocol: r.protocol, ...(r.timeout ? { timeoutMs: r.timeout } : {}), ...exchangeLimits(r) };
      }),
    };
  });
}
