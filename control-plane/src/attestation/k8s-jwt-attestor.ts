// Kubernetes attestation: a projected service-account token (JWT) verified with jose against the configured
// JWKS file, issuer and audience; the SPIFFE ID is spiffe://<td>/ns/<ns>/sa/<sa> from its claims only. Every
// claim read is checked for its JSON shape first (a signed token is still input), so any malformed one is refused
// with TESSERA_ERR_ATTESTATION_JWT_CLAIMS, never a TypeError. A token whose key the file lacks (a cluster that
// rotated its signing key), or no usable file at all, asks refetchKeys (the API-server refresher) for the keys
// again and is verified against what that gives before it is refused (audit 38b F2).
import { statSync } from 'node:fs';
import { type JSONWebKeySet, type JWTVerifyOptions, createLocalJWKSet, errors, jwtVerify } from 'jose';
import type { Clock } from '../../../common/clock.js';
import { type ErrorCode, TesseraError, describeError, isTesseraError } from '../../../common/errors.js';
import { repeatedJsonMember } from '../../../common/json-duplicate-members.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { AttestedIdentity } from './attested-identity.js';
import { readSmallFile } from '../../../shared-io/bounded-read.js';
import { MAX_JWKS_FILE_BYTES } from './k8s-oidc-discovery.js';

export interface K8sAttestorOptions {
  readonly trustDomain: TrustDomain;
  readonly issuer: string;
  readonly audience: string;
  /** JWKS of the cluster's service-account issuer (e.g. written by k8s-oidc-discovery.ts); re-read when it changes. */
  readonly jwksFile: string;
  readonly clock: Clock;
  /** Allowed clock skew on exp/nbf/iat, ms (default 5 s). */
  readonly clockToleranceMs?: number;
  /**
   * Fetches the keys into jwksFile again (rate-limited by its owner, k8s-jwks-refresher.ts); rejects when they could
   * not be fetched. Without it (a JWKS file kept by someone else) an unknown key is refused at once.
   */
  readonly refetchKeys?: () => Promise<void>;
}

const DEFAULT_CLOCK_TOLERANCE_MS = 5_000;

/** Asymmetric algorithms only: never "none" or an HMAC a public JWKS could be abused for. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'];
const MAX_TOKEN_LENGTH = 16_384;
const SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;

interface K8sClaims {
  sub?: unknown;
  iat?: unknown;
  'kubernetes.io'?: unknown;
}

// Every refusal carries details.reason: a fixed phrase for the audit row, never a part of the token (audit 55c F3).
const claimsError = (what: string) => new TesseraError('TESSERA_ERR_ATTESTATION_JWT_CLAIMS', what, { reason: what });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The pod UID of a "kubernetes.io" claim that names `ns` and `sa` (undefined: absent, or no pod named). The claim
 * is optional (older tokens lack it), but when present it must be the object Kubernetes writes, agreeing with sub.
 */
function podUidOf(k8s: unknown, ns: string, sa: string): string | undefined {
  if (k8s === undefined) return undefined;
  if (!isObject(k8s)) throw claimsError('kubernetes.io is not an object');
  const account = k8s['serviceaccount'];
  if (k8s['namespace'] !== ns || !isObject(account) || account['name'] !== sa) throw claimsError('kubernetes.io namespace/serviceaccount disagree with sub');
  const pod = k8s['pod'];
  if (pod === undefined) return undefined;
  if (!isObject(pod) || (pod['uid'] !== undefined && typeof pod['uid'] !== 'string')) throw claimsError('kubernetes.io pod is not an object with a string uid');
  return pod['uid'] === '' ? undefined : (pod['uid'] as string | undefined);
}

export class K8sJwtAttestor {
  readonly #o: K8sAttestorOptions;
  #cache: { mtimeMs: number; size: number; ino: number; keys: ReturnType<typeof createLocalJWKSet> } | undefined;

  constructor(opts: K8sAttestorOptions) {
    this.#o = opts;
  }

  /** Loads the JWKS now, so a bad file is reported at start rather than at the first attestation. */
  check(): void {
    this.#keys();
  }

  async attest(token: string): Promise<AttestedIdentity> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new TesseraError('TESSERA_ERR_ATTESTATION_JWT_INVALID', 'the token is empty or too long', { reason: 'the token is empty or too long' });
    refuseRepeatedMembers(token);
    const toleranceMs = this.#o.clockToleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS;
    const nowMs = this.#o.clock.nowMs();
    const claims = await this.#verified(token, {
      issuer: this.#o.issuer,
      audience: this.#o.audience,
      algorithms: ALGORITHMS,
      currentDate: new Date(nowMs),
      clockTolerance: Math.round(toleranceMs / 1000),
      requiredClaims: ['exp', 'sub'],
    });
    // jose checks iat only with maxTokenAge: a token issued in the future (beyond the skew allowed on exp and nbf)
    // was minted by a clock, or for a purpose, we do not trust. jose has checked that iat, if present, is a number.
    if (typeof claims.iat === 'number' && claims.iat * 1000 > nowMs + toleranceMs) throw claimsError('iat is in the future');
    const sub = typeof claims.sub === 'string' ? SUBJECT.exec(claims.sub) : null;
    if (!sub) throw claimsError('sub is not system:serviceaccount:<ns>:<sa>');
    const [, ns, sa] = sub as unknown as [string, string, string];
    const podUid = podUidOf(claims['kubernetes.io'], ns, sa);
    let spiffeId: SpiffeId;
    try {
      spiffeId = SpiffeId.fromSegments(this.#o.trustDomain, 'ns', ns, 'sa', sa);
    } catch {
      throw claimsError('namespace or service account is not a valid SPIFFE path segment');
    }
    // A projected token names its pod: the instance a pod re-attesting with it proves each time.
    return { spiffeId, attestor: 'k8s_psat', attestedAs: `k8s_psat:ns/${ns}/sa/${sa}`, ...(podUid !== undefined ? { instance: `pod:${podUid.slice(0, 64)}` } : {}) };
  }

  /**
   * The verified claims. A key the file lacks, or no usable file, is looked for again once through refetchKeys:
   * still missing then is JWT_UNKNOWN_KEY (the API server does not publish it); keys that could not be fetched
   * are the fetch's own code (UNAVAILABLE: not known right now, try again), never a verdict on the token.
   */
  async #verified(token: string, options: JWTVerifyOptions): Promise<K8sClaims> {
    let first: unknown;
    try {
      return await verify(token, this.#keys(), options);
    } catch (e) {
      first = e;
    }
    const refetch = this.#o.refetchKeys;
    const keyMissing = first instanceof errors.JWKSNoMatchingKey;
    if (!refetch || !(keyMissing || isTesseraError(first, 'TESSERA_ERR_ATTESTATION_JWKS_UNREADABLE'))) throw coded(first);
    const why = keyMissing ? 'the token\'s signing key is not in the JWKS' : describeError(first);
    try {
      await refetch();
    } catch (e) {
      const fetchReason = isTesseraError(e) && typeof e.details['reason'] === 'string' ? e.details['reason'] : 'failed';
      throw new TesseraError(isTesseraError(e) ? e.code : 'TESSERA_ERR_K8S_FETCH_FAILED', `${why}, and the keys could not be fetched again: ${isTesseraError(e) ? e.message : describeError(e)}`, {
        reason: `${keyMissing ? 'key not in the JWKS' : 'JWKS file unreadable'}; fetching the keys again: ${fetchReason}`,
      });
    }
    try {
      return await verify(token, this.#keys(), options);
    } catch (e) {
      throw coded(e);
    }
  }

  #keys(): ReturnType<typeof createLocalJWKSet> {
    const file = this.#o.jwksFile;
    try {
      const st = statSync(file);
      // The inode too: a refetch renames a new file in, possibly of the same size within the file system's mtime tick.
      if (this.#cache && this.#cache.mtimeMs === st.mtimeMs && this.#cache.size === st.size && this.#cache.ino === st.ino) return this.#cache.keys;
      const jwks = JSON.parse(readSmallFile(file, MAX_JWKS_FILE_BYTES)) as JSONWebKeySet;
      if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array');
      this.#cache = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, keys: createLocalJWKSet(jwks) };
      return this.#cache.keys;
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_ATTESTATION_JWKS_UNREADABLE', `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { reason: 'JWKS file unreadable' });
    }
  }
}

/**
 * jose reads the header and claims with JSON.parse, which keeps the last copy of a repeated member (two `sub`s:
 * the API server, or a relying party, may read the first): refused, as RFC 7515 §4 / RFC 7519 §4 allow. A part that
 * is not JSON is left to jose, which refuses it with its own reason.
 */
function refuseRepeatedMembers(token: string): void {
  const parts = token.split('.');
  if (parts.length !== 3) return;
  for (const [part, what] of [
    [parts[0]!, 'header'],
    [parts[1]!, 'claims'],
  ] as const) {
    const text = Buffer.from(part, 'base64url').toString('utf8');
    try {
      JSON.parse(text);
    } catch {
      continue;
    }
    const repeated = repeatedJsonMember(text);
    if (repeated !== undefined) throw new TesseraError('TESSERA_ERR_ATTESTATION_JWT_INVALID', `the token's ${what} repeats the member ${JSON.stringify(repeated.slice(0, 64))}`, { reason: `the token's ${what} repeats a member` });
  }
}

async function verify(token: string, keys: ReturnType<typeof createLocalJWKSet>, options: JWTVerifyOptions): Promise<K8sClaims> {
  return (await jwtVerify(token, keys, options)).payload as K8sClaims;
}

/** A refusal as thrown to the caller: our own coded errors as they are, jose's mapped to a code. */
function coded(e: unknown): TesseraError {
  if (isTesseraError(e)) return e;
  if (e instanceof errors.JWKSNoMatchingKey) return new TesseraError('TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY', 'no key of the JWKS matches the token\'s kid and alg', { reason: 'key not in the JWKS' });
  return new TesseraError(joseErrorCode(e), undefined, { reason: joseReason(e) });
}

/** Claims jose names in its errors; anything else is "a claim" (the name is jose's constant, never the token's). */
const JOSE_CLAIMS = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'sub', 'jti', 'typ']);
const CLAIM_CHECKS: Readonly<Record<string, string>> = { iss: 'iss is not the configured issuer', aud: 'aud lacks the configured audience', nbf: 'nbf is in the future', exp: 'exp is past' };

/** Which check jose refused the token by, as a fixed phrase: jose's messages may quote the token's header. */
function joseReason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'exp is past';
  if (e instanceof errors.JWTClaimValidationFailed) {
    const claim = JOSE_CLAIMS.has(e.claim) ? e.claim : 'a claim';
    if (e.reason === 'missing') return `${claim} is missing`;
    if (e.reason === 'invalid') return `${claim} is malformed`;
    return CLAIM_CHECKS[claim] ?? `${claim} check failed`;
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'the algorithm is not allowed';
  if (e instanceof errors.JOSEError && /^ERR_[A-Z_]{1,64}$/.test(e.code)) return `jose ${e.code}`;
  return 'the token could not be verified';
}

function joseErrorCode(e: unknown): ErrorCode {
  if (e instanceof errors.JWTExpired) return 'TESSERA_ERR_ATTESTATION_JWT_EXPIRED';
  if (e instanceof errors.JWTClaimValidationFailed) {
    // A claim of the wrong JSON type (a string nbf, a null iat) is malformed, not early or late.
    if (e.reason === 'invalid') return 'TESSERA_ERR_ATTESTATION_JWT_CLAIMS';
    if (e.claim === 'iss') return 'TESSERA_ERR_ATTESTATION_JWT_ISSUER';
    if (e.claim === 'aud') return 'TESSERA_ERR_ATTESTATION_JWT_AUDIENCE';
    if (e.claim === 'nbf' || e.claim === 'iat') return 'TESSERA_ERR_ATTESTATION_JWT_EXPIRED';
    return 'TESSERA_ERR_ATTESTATION_JWT_CLAIMS';
  }
  return 'TESSERA_ERR_ATTESTATION_JWT_INVALID';
}
