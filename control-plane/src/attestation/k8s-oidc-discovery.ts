// Fetches the API server's service-account issuer: OIDC discovery document, then its JWKS, checked strictly.
// The result feeds the JWKS-file verifier of the kubernetes attestor (write it with jwksDocument()).
import { type JsonWebKey, createPublicKey } from 'node:crypto';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { HttpFetch } from '../../../shared-io/https-fetch.js';
import { fetchJson } from './k8s-api-fetch.js';

export interface PublicJwk {
  readonly kty: 'RSA' | 'EC';
  readonly kid?: string;
  readonly alg?: string;
  readonly use?: string;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

export interface K8sJwks {
  readonly issuer: string;
  /** The jwks_uri the discovery document advertises (may be unreachable from inside the cluster). */
  readonly jwksUri: string;
  readonly keys: readonly PublicJwk[];
  readonly fetchedAtMs: number;
}

export interface DiscoveryOptions {
  /** e.g. https://kubernetes.default.svc */
  readonly apiServer: string;
  readonly fetch: HttpFetch;
  readonly clock: Clock;
  /** The control plane's own service-account token (discovery needs an authenticated caller on some clusters). */
  readonly bearerToken?: string;
  /** When set, the discovery document must name exactly this issuer (the attestor's configured `issuer`). */
  readonly expectedIssuer?: string;
  /**
   * Where to read the keys: "api-server" (default) reads /openid/v1/jwks from the API server itself, which is
   * always reachable in-cluster; "discovery" follows jwks_uri, which often points outside the cluster.
   */
  readonly jwksFrom?: 'api-server' | 'discovery';
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

function invalid(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_K8S_DISCOVERY_INVALID', message);
}

function httpsUrl(v: unknown, field: string): string {
  if (typeof v !== 'string') throw invalid(`discovery: ${field} is missing`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw invalid(`discovery: ${field} "${v}" is not a URL`);
  }
  if (u.protocol !== 'https:') throw invalid(`discovery: ${field} "${v}" is not https`);
  return v;
}

/** Checks one JWK: public RSA (>= 2048 bits) or EC P-256/384/521 signing key, no private members. */
export function checkPublicJwk(raw: unknown, index: number): PublicJwk {
  if (typeof raw !== 'object' || raw === null) throw invalid(`jwks: key ${index} is not an object`);
  const k = raw as Record<string, unknown>;
  for (const m of PRIVATE_MEMBERS) if (m in k) throw invalid(`jwks: key ${index} carries private member "${m}"`);
  if (k.kty !== 'RSA' && k.kty !== 'EC') throw invalid(`jwks: key ${index} has kty ${String(k.kty)} (RSA or EC expected)`);
  if (k.use !== undefined && k.use !== 'sig') throw invalid(`jwks: key ${index} has use "${String(k.use)}", not "sig"`);
  const fields = k.kty === 'RSA' ? (['n', 'e'] as const) : (['crv', 'x', 'y'] as const);
  const out: Record<string, string> = { kty: k.kty };
  for (const f of [...fields, 'kid', 'alg', 'use'] as const) {
    if (k[f] === undefined) continue;
    if (typeof k[f] !== 'string') throw invalid(`jwks: key ${index} member "${f}" is not a string`);
    out[f] = k[f] as string;
  }
  for (const f of fields) if (out[f] === undefined) throw invalid(`jwks: key ${index} lacks "${f}"`);
  let details: { modulusLength?: number; namedCurve?: string };
  try {
    details = createPublicKey({ key: out as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails ?? {};
  } catch (e) {
    throw invalid(`jwks: key ${index} is not a usable public key (${(e as Error).message})`);
  }
  if (k.kty === 'RSA' && (details.modulusLength ?? 0) < 2048) throw invalid(`jwks: key ${index} is RSA ${details.modulusLength} bits (< 2048)`);
  return out as unknown as PublicJwk;
}

export function parseJwks(body: unknown): PublicJwk[] {
  const keys = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw invalid('jwks: no "keys" array, or it is empty');
  if (keys.length > 64) throw invalid(`jwks: ${keys.length} keys (more than 64)`);
  return keys.map((k, i) => checkPublicJwk(k, i));
}

export async function fetchK8sJwks(opts: DiscoveryOptions): Promise<K8sJwks> {
  const base = opts.apiServer.replace(/\/+$/, '');
  const headers: Record<string, string> = opts.bearerToken ? { authorization: `Bearer ${opts.bearerToken}` } : {};
  const doc = (await fetchJson(opts.fetch, `${base}/.well-known/openid-configuration`, { method: 'GET', headers })) as Record<string, unknown> | null;
  if (typeof doc !== 'object' || doc === null) throw invalid('discovery: the document is not a JSON object');
  const issuer = httpsUrl(doc.issuer, 'issuer');
  const jwksUri = httpsUrl(doc.jwks_uri, 'jwks_uri');
  if (opts.expectedIssuer !== undefined && issuer !== opts.expectedIssuer) {
    throw invalid(`discovery: issuer is "${issuer}", the attestor expects "${opts.expectedIssuer}"`);
  }
  const algs = doc.id_token_signing_alg_values_supported;
  if (algs !== undefined && (!Array.isArray(algs) || algs.some((a) => typeof a !== 'string' || a === 'none'))) {
    throw invalid('discovery: id_token_signing_alg_values_supported is malformed or allows "none"');
  }
  const jwksUrl = (opts.jwksFrom ?? 'api-server') === 'api-server' ? `${base}/openid/v1/jwks` : jwksUri;
  // The bearer token only ever goes to the API server, never to a jwks_uri elsewhere.
  const sameOrigin = new URL(jwksUrl).origin === new URL(base).origin;
  const keys = parseJwks(await fetchJson(opts.fetch, jwksUrl, { method: 'GET', headers: sameOrigin ? headers : {} }));
  return { issuer, jwksUri, keys, fetchedAtMs: opts.clock.nowMs() };
}

/** The most the attestor's `jwksFile` may hold: what it reads (k8s-jwt-attestor.ts) and what is written here. */
export const MAX_JWKS_FILE_BYTES = 1 << 20;

/**
 * The JWKS as the attestor's `jwksFile` holds it; TESSERA_ERR_K8S_DISCOVERY_INVALID when that document would be over
 * MAX_JWKS_FILE_BYTES (a key set just under the fetch cap, pretty-printed, was written and then refused by every
 * attestation, the last good file gone: audit 40a F2), so the refresher keeps the last good file.
 */
export function jwksDocument(jwks: K8sJwks): string {
  const text = `${JSON.stringify({ keys: jwks.keys }, null, 2)}\n`;
  const size = Buffer.byteLength(text);
  if (size > MAX_JWKS_FILE_BYTES) throw invalid(`jwks: ${jwks.keys.length} key(s) make a ${size}-byte file, over the ${MAX_JWKS_FILE_BYTES} the attestor reads`);
  return text;
}
