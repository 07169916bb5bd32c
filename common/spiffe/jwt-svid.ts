// JWT-SVIDs per the SPIFFE JWT-SVID spec: signing (ES256) and pure validation against JWT bundles (kid → public
// key, per trust domain). Every refusal is a coded TesseraError whose details carry a short metric `reason`.
import { type KeyObject, constants, sign, verify } from 'node:crypto';
import { type ErrorCode, TesseraError } from '../errors.js';
import { repeatedJsonMember } from '../json-duplicate-members.js';
import { SpiffeId } from './spiffe-id.js';
import { reservedIdReason } from './workload-id.js';

/** The JWT authorities of one trust domain: key id → public key. */
export type JwtBundle = ReadonlyMap<string, KeyObject>;
/** Trust domain name → its JWT bundle. */
export type JwtBundleSet = ReadonlyMap<string, JwtBundle>;

/** Short labels for metrics (never sent to a peer beyond the Workload API caller that asked). */
export const JWT_SVID_REFUSALS = {
  TESSERA_ERR_JWT_SVID_MALFORMED: 'malformed',
  TESSERA_ERR_JWT_SVID_ALG_NOT_ALLOWED: 'alg_not_allowed',
  TESSERA_ERR_JWT_SVID_NO_AUDIENCE: 'no_audience',
  TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE: 'wrong_audience',
  TESSERA_ERR_JWT_SVID_EXPIRED: 'expired',
  TESSERA_ERR_JWT_SVID_NOT_YET_VALID: 'not_yet_valid',
  TESSERA_ERR_JWT_SVID_BAD_SUBJECT: 'bad_subject',
  TESSERA_ERR_JWT_SVID_NO_BUNDLE: 'no_bundle',
  TESSERA_ERR_JWT_SVID_UNKNOWN_KEY: 'unknown_key',
  TESSERA_ERR_JWT_SVID_BAD_SIGNATURE: 'bad_signature',
} as const satisfies Partial<Record<ErrorCode, string>>;
export type JwtSvidRefusalCode = keyof typeof JWT_SVID_REFUSALS;
export type JwtSvidRefusalReason = (typeof JWT_SVID_REFUSALS)[JwtSvidRefusalCode];

/** The metric reason of a validation error; `other` for anything that is not a JWT-SVID refusal. */
export function jwtRefusalReason(e: unknown): JwtSvidRefusalReason | 'other' {
  const code = e instanceof TesseraError ? e.code : undefined;
  return code !== undefined && code in JWT_SVID_REFUSALS ? JWT_SVID_REFUSALS[code as JwtSvidRefusalCode] : 'other';
}

function refuse(code: JwtSvidRefusalCode, message: string): TesseraError {
  return new TesseraError(code, message, { reason: JWT_SVID_REFUSALS[code] });
}

const NO_DOMAINS: ReadonlySet<string> = new Set();

/** Tokens larger than this are refused before any parsing (a workload sends them; bound the work). */
export const MAX_JWT_BYTES = 16 * 1024;
/** Clock skew tolerated on exp, nbf and iat. */
export const JWT_SKEW_MS = 30_000;

interface AlgSpec {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly kty: 'ec' | 'rsa';
  readonly curve?: string;
  readonly pss?: boolean;
}
/** The JWT-SVID spec's allowed algorithms; `none` and HMAC are absent on purpose. */
const ALGS: Readonly<Record<string, AlgSpec>> = {
  ES256: { hash: 'sha256', kty: 'ec', curve: 'prime256v1' },
  ES384: { hash: 'sha384', kty: 'ec', curve: 'secp384r1' },
  ES512: { hash: 'sha512', kty: 'ec', curve: 'secp521r1' },
  RS256: { hash: 'sha256', kty: 'rsa' },
  RS384: { hash: 'sha384', kty: 'rsa' },
  RS512: { hash: 'sha512', kty: 'rsa' },
  PS256: { hash: 'sha256', kty: 'rsa', pss: true },
  PS384: { hash: 'sha384', kty: 'rsa', pss: true },
  PS512: { hash: 'sha512', kty: 'rsa', pss: true },
};

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * Each allowed curve's order n. An ECDSA signature (r, s) verifies as (r, n − s) too, so anyone who sees a token can
 * write a second string for it; the canonical one has s ≤ n/2 ("low S"). Tessera signs only that one.
 */
const CURVE_ORDER: Readonly<Record<string, bigint>> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  secp521r1: 0x01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

/** The s half of an IEEE P1363 signature (r ‖ s, each half the length) as a number. */
function sOf(sig: Buffer): bigint {
  return BigInt(`0x${sig.subarray(sig.length / 2).toString('hex') || '0'}`);
}

/** The same signature with s ≤ n/2: (r, n − s) when s is in the upper half. */
function lowS(sig: Buffer, curve: string): Buffer {
  const n = CURVE_ORDER[curve]!;
  const s = sOf(sig);
  if (s <= n >> 1n) return sig;
  const half = sig.length / 2;
  const flipped = Buffer.from((n - s).toString(16).padStart(half * 2, '0'), 'hex');
  return Buffer.concat([sig.subarray(0, half), flipped]);
}

export interface JwtSvidToSign {
  /** ECDSA P-256 private key. */
  readonly privateKey: KeyObject;
  readonly keyId: string;
  readonly spiffeId: string;
  readonly audience: readonly string[];
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/** Signs a JWT-SVID with ES256: header {alg, kid, typ: JWT}, claims {sub, aud, exp, iat}. */
export function signJwtSvid(t: JwtSvidToSign): string {
  const header = { alg: 'ES256', kid: t.keyId, typ: 'JWT' };
  const claims = { sub: t.spiffeId, aud: [...t.audience], exp: Math.floor(t.expiresAtMs / 1000), iat: Math.floor(t.issuedAtMs / 1000) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = lowS(sign('sha256', Buffer.from(input), { key: t.privateKey, dsaEncoding: 'ieee-p1363' }), 'prime256v1');
  return `${input}.${b64url(sig)}`;
}

export interface ValidatedJwtSvid {
  readonly spiffeId: SpiffeId;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly keyId: string;
  readonly expiresAtMs: number;
}

/**
 * The bytes of a base64url part, which must be their one canonical spelling (no padding, no set bits past the data
 * in its last character): otherwise one token would have other strings that validate too, and a relying party's
 * replay cache or deny-list keyed by the token string would miss them.
 */
function base64urlBytes(part: string, what: string): Buffer {
  const bytes = Buffer.from(part, 'base64url');
  if (!/^[A-Za-z0-9_-]*$/.test(part) || bytes.toString('base64url') !== part) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${what} is not canonical base64url`);
  return bytes;
}

function decodePart(part: string, what: string): Record<string, unknown> {
  if (part === '') throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${what} is empty`);
  const bytes = base64urlBytes(part, what);
  const text = bytes.toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${what} is not a JSON object`);
  // JSON.parse keeps the last copy, a relying party's parser may keep the first (RFC 7515 §4, RFC 7519 §4: reject).
  const repeated = repeatedJsonMember(text);
  if (repeated !== undefined) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${what} repeats the member ${JSON.stringify(repeated.slice(0, 64))}`);
  return v as Record<string, unknown>;
}

/** Header and claims, decoded without any check of signature or meaning (for diagnostics and the CLI). */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signingInput: string; signature: Buffer } {
  if (typeof token !== 'string' || token.length === 0) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'the token is empty');
  // Taken as given, never trimmed, wherever it is judged (ValidateJWTSVID, `svid verify --jwt`): a trimmed token would
  // be a second string that validates, which a replay cache keyed by the string would miss (as non-canonical base64url).
  if (token.trim() !== token) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'the token has whitespace around it (a JWS compact serialization has none): pass it exactly as issued');
  if (Buffer.byteLength(token) > MAX_JWT_BYTES) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the token is larger than ${MAX_JWT_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'a JWS compact serialization has exactly three parts');
  const [h, c, s] = parts as [string, string, string];
  return { header: decodePart(h, 'header'), claims: decodePart(c, 'claims'), signingInput: `${h}.${c}`, signature: base64urlBytes(s, 'signature') };
}

function verifySignature(alg: AlgSpec, key: KeyObject, input: string, sig: Buffer): boolean {
  if (key.type !== 'public' || key.asymmetricKeyType !== alg.kty) return false;
  if (alg.kty === 'ec') {
    if (key.asymmetricKeyDetails?.namedCurve !== alg.curve) return false;
    return verify(alg.hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, sig);
  }
  const padding = alg.pss ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : {};
  return verify(alg.hash, Buffer.from(input), { key, ...padding }, sig);
}

/** The header parameters a JWT-SVID may carry (crit is refused on its own, with its reason). */
const HEADER_PARAMETERS: ReadonlySet<string> = new Set(['alg', 'kid', 'typ', 'crit']);

/** The largest NumericDate (seconds) a Date can hold: ECMAScript time values reach ±8.64e15 ms. */
const MAX_NUMERIC_DATE = 8.64e12;
/** A NumericDate a caller can turn into a Date (print, compare, cache until): finite and in range. */
const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_NUMERIC_DATE;

/**
 * Validates a JWT-SVID for `audience` at `nowMs`, per the JWT-SVID spec: allowed asymmetric alg only, `sub` a
 * SPIFFE ID, the key (by `kid`) from the JWT bundle of **the subject's own trust domain**, signature, `aud`
 * holding the audience, `exp` in the future (skew tolerated), `nbf` and `iat` if present dates not in the future, `sub`
 * not a reserved ID (workload-id.ts), the token exactly as given (no whitespace around it).
 * `lowSDomains`: trust domains whose issuer signs ECDSA tokens with a low S only (Tessera's own): a high-S token of
 * one of them is the second spelling of a real token, refused. Other issuers (a federated SPIRE) sign either.
 */
export function validateJwtSvid(token: string, audience: string, bundles: JwtBundleSet, nowMs: number, skewMs = JWT_SKEW_MS, lowSDomains: ReadonlySet<string> = NO_DOMAINS): ValidatedJwtSvid {
  const { header, claims, signingInput, signature } = decodeJwt(token);
  const algName = header['alg'];
  const alg = typeof algName === 'string' && Object.hasOwn(ALGS, algName) ? ALGS[algName]! : undefined;
  if (!alg) throw refuse('TESSERA_ERR_JWT_SVID_ALG_NOT_ALLOWED', `alg ${JSON.stringify(algName ?? null)} is not allowed (RS/ES/PS 256/384/512 only)`);
  const typ = header['typ'];
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE') throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `typ ${JSON.stringify(typ)} is not JWT or JOSE`);
  if (header['crit'] !== undefined) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'the header has crit parameters, which are not understood');
  // JWT-SVID §2: no header parameter beyond alg, kid and typ (jku, jwk, x5u, x5c would name a key of the token's
  // own choosing; x5t, cty, zip, b64 change how it is read).
  for (const p of Object.keys(header)) if (!HEADER_PARAMETERS.has(p)) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the header carries ${p}, which a JWT-SVID must not`);
  const sub = claims['sub'];
  if (typeof sub !== 'string') throw refuse('TESSERA_ERR_JWT_SVID_BAD_SUBJECT', 'the token has no sub claim');
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(sub);
  } catch (e) {
    throw refuse('TESSERA_ERR_JWT_SVID_BAD_SUBJECT', `sub is not a SPIFFE ID: ${(e as Error).message}`);
  }
  // The issuance rule's reserved IDs (the bare trust-domain ID, the control plane's own), in the subject's own trust
  // domain: never issued as a JWT-SVID here, so never accepted as one, nor from a federated issuer.
  const reserved = reservedIdReason(spiffeId);
  if (reserved !== undefined) throw refuse('TESSERA_ERR_JWT_SVID_BAD_SUBJECT', `sub is reserved: ${reserved}`);
  const kid = header['kid'];
  if (typeof kid !== 'string' || kid === '') throw refuse('TESSERA_ERR_JWT_SVID_UNKNOWN_KEY', 'the header has no kid');
  const bundle = bundles.get(spiffeId.trustDomain.name);
  if (!bundle) throw refuse('TESSERA_ERR_JWT_SVID_NO_BUNDLE', `no JWT bundle for trust domain ${spiffeId.trustDomain.name}`);
  const key = bundle.get(kid);
  if (!key) throw refuse('TESSERA_ERR_JWT_SVID_UNKNOWN_KEY', `kid ${JSON.stringify(kid)} is not in the JWT bundle of ${spiffeId.trustDomain.name}`);
  if (!verifySignature(alg, key, signingInput, signature)) throw refuse('TESSERA_ERR_JWT_SVID_BAD_SIGNATURE', 'the signature does not verify with that key');
  if (alg.curve !== undefined && lowSDomains.has(spiffeId.trustDomain.name) && sOf(signature) > CURVE_ORDER[alg.curve]! >> 1n) {
    throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'the signature is not in its canonical low-S form (a second spelling of a token)');
  }
  // Claims are judged only once the signature says they are the issuer's.
  const aud = claims['aud'];
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : undefined;
  if (!auds || auds.length === 0) throw refuse('TESSERA_ERR_JWT_SVID_NO_AUDIENCE', 'the token has no aud claim');
  if (!auds.includes(audience)) throw refuse('TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE', 'the token is not for this audience');
  const exp = claims['exp'];
  if (!isNumericDate(exp)) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', 'the token has no exp claim that is a date (seconds, within ±8.64e12)');
  if (exp * 1000 + skewMs <= nowMs) throw refuse('TESSERA_ERR_JWT_SVID_EXPIRED', `the token expired at ${new Date(exp * 1000).toISOString()}`);
  // nbf and iat are optional; when present each is a date (as exp: malformed otherwise) not ahead of now by more
  // than the skew tolerated on exp. A token dated ahead comes from a clock that is off or from no honest issuer.
  for (const claim of ['nbf', 'iat'] as const) {
    const v = claims[claim];
    if (v === undefined) continue;
    if (!isNumericDate(v)) throw refuse('TESSERA_ERR_JWT_SVID_MALFORMED', `the ${claim} claim is not a date (seconds, within ±8.64e12)`);
    if (v * 1000 - skewMs > nowMs) throw refuse('TESSERA_ERR_JWT_SVID_NOT_YET_VALID', claim === 'nbf' ? 'the token is not valid yet (nbf)' : `the token was issued in the future (iat ${new Date(v * 1000).toISOString()})`);
  }
  return { spiffeId, claims, keyId: kid, expiresAtMs: exp * 1000 };
}
