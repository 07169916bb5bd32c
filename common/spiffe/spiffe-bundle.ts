// The SPIFFE bundle document (SPIFFE Trust Domain and Bundle spec): a JWKS whose keys carry `use: x509-svid`
// (an X.509 authority, `x5c` holding its one DER certificate) or `use: jwt-svid` (a JWT authority with `kid`),
// plus `spiffe_sequence` and `spiffe_refresh_hint`. Building and strict parsing, both pure. What the spec has
// consumers skip is skipped, not refused, so one entry a peer adds (an Ed25519 key, an x5c chain) does not make us
// stop following its bundle: entries of another use, of a key type we do not take (only EC and RSA), x509-svid
// entries without x5c; of several x5c values only the first counts (X509-SVID section 6.2). The RSA key rules cost
// tens of milliseconds a key, so they run apart (judgeBundleKeys) on each distinct key once, and a document may hold
// at most MAX_BUNDLE_RSA_KEYS distinct ones: what a peer's document costs us is bounded whatever it holds.
import { type KeyObject, X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { TesseraError } from '../errors.js';
import { RSA_MAX_BITS, rsaKeyWeakness } from '../pki/rsa-key-strength.js';
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
/**
 * And with at most this many distinct RSA keys (copies of one key count once): each costs a strength check (~60 ms
 * of a worker thread's CPU at 4096 bits). A trust domain publishes a few authorities and JWT keys, a rotation doubles
 * them; a peer with 255 fresh RSA keys per fetch would otherwise cost the CA ~15 s of CPU every refreshMin.
 */
export const MAX_BUNDLE_RSA_KEYS = 16;

/** An RSA key of a document whose strength rules remain to be run, named by where it first appears. */
export interface BundleRsaKey {
  readonly key: KeyObject;
  readonly where: string;
}

/** A parsed document whose every rule has passed but the RSA keys' strength, and its distinct RSA keys to judge. */
export interface UnjudgedSpiffeBundle {
  readonly bundle: SpiffeBundle;
  readonly rsaKeys: readonly BundleRsaKey[];
}

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

/** The members of a JWK that make its key (all but use, kid, x5c and alg), and their text: what names it. */
function keyMembers(jwk: Record<string, unknown>): { params: Record<string, unknown>; text: string } {
  const { use: _u, kid: _k, x5c: _x, alg: _a, ...params } = jwk;
  return { params, text: JSON.stringify(params) };
}

/**
 * The entries' keys, each imported and checked once: a key listed again under another kid, or an x509-svid entry
 * repeated word for word, costs a lookup, not an import (~0.1 ms) and a certificate read (~0.3 ms) 256 times over.
 */
class KeyImports {
  readonly #keys = new Map<string, KeyObject>();
  readonly #x509 = new Set<string>();

  key(jwk: Record<string, unknown>, where: string): KeyObject {
    const { params, text } = keyMembers(jwk);
    const known = this.#keys.get(text);
    if (known) return known;
    if (params['d'] !== undefined) throw bad(`${where}: holds a private key`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: params as never, format: 'jwk' });
    } catch (e) {
      throw bad(`${where}: not a valid public key (${(e as Error).message})`);
    }
    checkBundleKey(key, where);
    this.#keys.set(text, key);
    return key;
  }

  /** Whether this x509-svid entry (certificate and key members) was read before: a copy adds no authority. */
  seenX509(x5c0: string, jwk: Record<string, unknown>): boolean {
    const id = `${x5c0} ${keyMembers(jwk).text}`;
    if (this.#x509.has(id)) return true;
    this.#x509.add(id);
    return false;
  }
}

/** The distinct RSA keys among these (by SubjectPublicKeyInfo), each with where it first appears. */
export class DistinctRsaKeys {
  readonly #keys = new Map<string, BundleRsaKey>();
  readonly #added = new Set<KeyObject>();
  readonly #max: number;

  constructor(max = Number.POSITIVE_INFINITY) {
    this.#max = max;
  }

  add(key: KeyObject, where: string): void {
    if (key.asymmetricKeyType !== 'rsa' || this.#added.has(key)) return;
    this.#added.add(key);
    const id = key.export({ type: 'spki', format: 'der' }).toString('base64');
    if (this.#keys.has(id)) return;
    if (this.#keys.size >= this.#max) throw bad(`${where}: more than ${this.#max} distinct RSA keys (each costs a strength check)`);
    this.#keys.set(id, { key, where });
  }

  list(): BundleRsaKey[] {
    return [...this.#keys.values()];
  }
}

const BUNDLE_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * A bundle key (an authority's, or a JWT key) must be as strong as what the CA takes from its own workloads: a
 * federated peer's RSA-512 key would otherwise anchor our proxies' trust in that domain. Type, curve and size here
 * (cheap); an RSA key's other rules through judgeBundleKeys.
 */
export function checkBundleKey(key: KeyObject, where: string): void {
  const d = key.asymmetricKeyDetails;
  const ok = key.asymmetricKeyType === 'ec' ? BUNDLE_CURVES.has(d?.namedCurve ?? '') : (d?.modulusLength ?? 0) >= 2048;
  if (!ok) {
    throw new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', `bundle ${where}: a ${key.asymmetricKeyType} key${d?.namedCurve ? ` on ${d.namedCurve}` : ''}${d?.modulusLength ? ` of ${d.modulusLength} bits` : ''} (EC P-256/P-384/P-521 or RSA of 2048 bits or more)`);
  }
  if (key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) > RSA_MAX_BITS) throw weakRsa(where, `a ${d?.modulusLength}-bit modulus (allowed: 2048 to ${RSA_MAX_BITS})`);
}

const weakRsa = (where: string, weakness: string) => new TesseraError('TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY', `bundle ${where}: an RSA key with ${weakness}`);

/**
 * Size is not strength: with e = 1 a signature is forged without the key, with a prime modulus the key is computed
 * from the public one. The CA's own rules for workload keys (rsa-key-strength.ts), by `weakness` (the control plane's
 * runs on a worker thread and remembers verdicts), one key at a time; throws TESSERA_ERR_SPIFFE_BUNDLE_WEAK_KEY.
 */
export async function judgeBundleKeys(keys: readonly BundleRsaKey[], weakness: (key: KeyObject) => Promise<string | null>): Promise<void> {
  for (const { key, where } of keys) {
    const why = await weakness(key);
    if (why) throw weakRsa(where, why);
  }
}

const isNonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** `spiffe_sequence` from its source text: JSON numbers past 2^53 lose digits as numbers. */
function sequenceOf(source: string | undefined): bigint | undefined {
  if (source === undefined || !/^(0|[1-9][0-9]{0,30})$/.test(source)) throw bad('"spiffe_sequence" is not a non-negative integer');
  return BigInt(source);
}

/** Parses and judges a bundle document in this thread (a command's, not a server's): readSpiffeBundleSteps, then each
 * distinct RSA key's rules. Throws TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED or _WEAK_KEY naming the fault. */
export function parseSpiffeBundle(text: string): SpiffeBundle {
  const { bundle, rsaKeys } = runSteps(readSpiffeBundleSteps(text));
  for (const { key, where } of rsaKeys) {
    const why = rsaKeyWeakness(key);
    if (why) throw weakRsa(where, why);
  }
  return bundle;
}

/** Runs steps (readSpiffeBundleSteps and the like) to their end, here and now. */
export function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Parses a bundle document (text) by every rule but the RSA keys' strength, which the caller runs on the distinct
 * RSA keys returned (judgeBundleKeys). Throws TESSERA_ERR_SPIFFE_BUNDLE_MALFORMED naming the fault (also for more
 * than MAX_BUNDLE_RSA_KEYS distinct RSA keys), _WEAK_KEY for a key's type or size. Yields before each entry (reading
 * one costs up to ~0.5 ms, 256 of them over 100 ms), so a server can let its event loop turn between entries.
 */
export function* readSpiffeBundleSteps(text: string): Generator<void, UnjudgedSpiffeBundle> {
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
  const rsaKeys = new DistinctRsaKeys(MAX_BUNDLE_RSA_KEYS);
  const imports = new KeyImports();
  for (const [i, k] of (keys as unknown[]).entries()) {
    yield;
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
      if (imports.seenX509(x5c[0], jwk)) continue;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
      } catch {
        throw bad(`${where}: x5c is not a DER certificate`);
      }
      const key = imports.key(jwk, where);
      if (!cert.publicKey.equals(key)) throw bad(`${where}: the key parameters are not the x5c certificate's key`);
      rsaKeys.add(key, where);
      x509.push(cert);
    } else if (use === 'jwt-svid') {
      const kid = jwk['kid'];
      if (typeof kid !== 'string' || kid === '') throw bad(`${where}: a jwt-svid key needs a kid`);
      if (jwt.has(kid)) throw bad(`${where}: kid ${JSON.stringify(kid)} appears twice`);
      const key = imports.key(jwk, where);
      rsaKeys.add(key, where);
      jwt.set(kid, key);
    }
  }
  return { bundle: { x509Authorities: x509, jwtAuthorities: jwt, sequence, refreshHintSeconds: hint as number | undefined, ignored }, rsaKeys: rsaKeys.list() };
}
