// The SPIFFE bundle document (SPIFFE Trust Domain and Bundle spec): a JWKS whose keys carry `use: x509-svid`
// (an X.509 authority, `x5c` holding its one DER certificate) or `use: jwt-svid` (a JWT authority with `kid`),
// plus `spiffe_sequence` and `spiffe_refresh_hint`. Building and strict parsing, both pure. What the spec has
// consumers skip is skipped, not refused, so one entry a peer adds (an Ed25519 key, an x5c chain) does not make us
// stop following its bundle: entries of another use, of a key type we do not take (only EC and RSA), x509-svid
// entries without x5c; of several x5c values only the first counts (X509-SVID section 6.2).
import { type KeyObject, X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { rsaKeyWeakness } from '../pki/rsa-key-strength.js';
import type { JwtBundle } from './jwt-svid.js';

export interface JwtAuthority {
  readonly keyId: string;
  readonly publicKey: KeyObject;
}

export interface SpiffeBundle {
  readonly x509Authorities: readonly X509Certificate[];
  readonly jwtAuthorities: JwtBundle;
  /** Exact to 64 bits and beyond (the spec asks for at least 64), hence a bigint. */
  readonly sequence: bigint | undefined;
  readonly refreshHintSeconds: number | undefined;
  /** The entries skipped as the spec says, each with why (`keys[2]: kty "OKP" is not EC or RSA`). */
  readonly ignored: readonly string[];
}

/** A bundle document with at most this many keys is accepted (a JWKS is small; bound the work). */
export const MAX_BUNDLE_KEYS = 256;

const bad = (message: string) => new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED', message);

/** The public JWK members of a key (no private parts), as node:crypto exports them. */
function publicJwk(key: KeyObject): Record<string, unknown> {
  return key.export({ format: 'jwk' }) as Record<string, unknown>;
}

/** What identifies JWT keys for change detection: kid and a digest of the key. */
export function jwtAuthoritiesKey(jwt: readonly JwtAuthority[]): string[] {
  return jwt.map((k) => `${k.keyId}:${createHash('sha256').update(k.publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`);
}

/** A JWT authority as one JWKS entry (`use: jwt-svid`); also what FetchJWTBundles serves. */
export function jwtAuthorityJwk(a: JwtAuthority): Record<string, unknown> {
  return { ...publicJwk(a.publicKey), use: 'jwt-svid', kid: a.keyId };
}

/** The JWKS of one trust domain's JWT authorities (the Workload API's FetchJWTBundles format). */
export function jwtBundleJwks(bundle: JwtBundle): { keys: Record<string, unknown>[] } {
  return { keys: [...bundle].map(([keyId, publicKey]) => jwtAuthorityJwk({ keyId, publicKey })) };
}

export function spiffeBundleDocument(b: {
  readonly x509Authorities: readonly X509Certificate[];
  readonly jwtAuthorities: readonly JwtAuthority[];
  readonly sequence: number;
  readonly refreshHintSeconds: number;
}): Record<string, unknown> {
  const x509 = b.x509Authorities.map((c) => ({ ...publicJwk(c.publicKey), use: 'x509-svid', x5c: [c.raw.toString('base64')] }));
  return { keys: [...x509, ...b.jwtAuthorities.map(jwtAuthorityJwk)], spiffe_sequence: b.sequence, spiffe_refresh_hint: b.refreshHintSeconds };
}

/** Why an entry of a SPIFFE use is skipped: a key type this bundle does not take (the spec: ignored). */
function unusableKeyType(jwk: Record<string, unknown>, where: string): string | undefined {
  return jwk['kty'] === 'EC' || jwk['kty'] === 'RSA' ? undefined : `${where}: kty ${JSON.stringify(jwk['kty'] ?? null)} is not EC or RSA`;
}

function importJwk(jwk: Record<string, unknown>, where: string): KeyObject {
  if (jwk['d'] !== undefined) throw bad(`${where}: holds a private key`);
  let key: KeyObject;
  try {
    const { use: _u, kid: _k, x5c: _x, alg: _a, ...params } = jwk;
    key = createPublicKey({ key: params as never, format: 'jwk' });
  } catch (e) {
    throw bad(`${where}: not a valid public key (${(e as Error).message})`);
  }
  checkBundleKey(key, where);
  return key;
}

const BUNDLE_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * A bundle key (an authority's, or a JWT key) must be as strong as what the CA takes from its own workloads: a
 * federated peer's RSA-512 key would otherwise anchor our proxies' trust in that domain.
 */
export function checkBundleKey(key: KeyObject, where: string): void {
  const d = key.asymmetricKeyDetails;
  const ok = key.asymmetricKeyType === 'ec' ? BUNDLE_CURVES.has(d?.namedCurve ?? '') : (d?.modulusLength ?? 0) >= 2048;
  if (!ok) {
    throw new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', `bundle ${where}: a ${key.asymmetricKeyType} key${d?.namedCurve ? ` on ${d.namedCurve}` : ''}${d?.modulusLength ? ` of ${d.modulusLength} bits` : ''} (EC P-256/P-384/P-521 or RSA of 2048 bits or more)`);
  }
  // Size is not strength: with e = 1 a signature is forged without the key, with a prime modulus the key is
  // computed from the public one. The CA's own rules for workload keys (once per fetched key, ~15 ms at 2048 bits).
  const weakness = rsaKeyWeakness(key);
  if (weakness) throw new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', `bundle ${where}: an RSA key with ${weakness}`);
}

const isNonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** `spiffe_sequence` from its source text: JSON numbers past 2^53 lose digits as numbers. */
function sequenceOf(source: string | undefined): bigint | undefined {
  if (source === undefined || !/^(0|[1-9][0-9]{0,30})$/.test(source)) throw bad('"spiffe_sequence" is not a non-negative integer');
  return BigInt(source);
}

/** Parses a bundle document (text); throws TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED naming the fault. */
export function parseSpiffeBundle(text: string): SpiffeBundle {
  let doc: unknown;
  // Each number's source text reaches the reviver (JSON.parse source access): the sequence, exactly, by its holder.
  const sequenceSources = new Map<unknown, string | undefined>();
  try {
    doc = JSON.parse(text, function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
      if (key === 'spiffe_sequence' && typeof value === 'number') sequenceSources.set(this, context?.source);
      return value;
    } as (key: string, value: unknown) => unknown);
  } catch {
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object');
  const d = doc as Record<string, unknown>;
  const keys = d['keys'];
  if (!Array.isArray(keys)) throw bad('"keys" is not an array');
  if (keys.length > MAX_BUNDLE_KEYS) throw bad(`more than ${MAX_BUNDLE_KEYS} keys`);
  const seq = d['spiffe_sequence'];
  const hint = d['spiffe_refresh_hint'];
  if (seq !== undefined && typeof seq !== 'number') throw bad('"spiffe_sequence" is not a non-negative integer');
  const sequence = seq === undefined ? undefined : sequenceOf(sequenceSources.get(doc));
  if (hint !== undefined && !isNonNegInt(hint)) throw bad('"spiffe_refresh_hint" is not a non-negative integer');
  const x509: X509Certificate[] = [];
  const jwt = new Map<string, KeyObject>();
  const ignored: string[] = [];
  for (const [i, k] of (keys as unknown[]).entries()) {
    const where = `keys[${i}]`;
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw bad(`${where} is not an object`);
    const jwk = k as Record<string, unknown>;
    const use = jwk['use'];
    // Any other (or no) `use`: not for SPIFFE; the spec has consumers ignore it, and keys of a type we do not take.
    if (use !== 'x509-svid' && use !== 'jwt-svid') continue;
    const unusable = unusableKeyType(jwk, where);
    if (unusable) {
      ignored.push(unusable);
      continue;
    }
    if (use === 'x509-svid') {
      const x5c = jwk['x5c'];
      if (x5c === undefined || (Array.isArray(x5c) && x5c.length === 0)) {
        ignored.push(`${where}: an x509-svid entry without x5c`);
        continue;
      }
      if (!Array.isArray(x5c) || typeof x5c[0] !== 'string') throw bad(`${where}: x5c is not an array of base64 certificates`);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
      } catch {
        throw bad(`${where}: x5c is not a DER certificate`);
      }
      if (!cert.publicKey.equals(importJwk(jwk, where))) throw bad(`${where}: the key parameters are not the x5c certificate's key`);
      x509.push(cert);
    } else if (use === 'jwt-svid') {
      const kid = jwk['kid'];
      if (typeof kid !== 'string' || kid === '') throw bad(`${where}: a jwt-svid key needs a kid`);
      if (jwt.has(kid)) throw bad(`${where}: kid ${JSON.stringify(kid)} appears twice`);
      jwt.set(kid, importJwk(jwk, where));
    }
  }
  return { x509Authorities: x509, jwtAuthorities: jwt, sequence, refreshHintSeconds: hint as number | undefined, ignored };
}
