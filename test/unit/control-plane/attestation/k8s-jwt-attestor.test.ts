// Kubernetes projected-token attestation (K8sJwtAttestor) with real tokens signed by jose against a JWKS file:
// the SPIFFE ID built from the token's namespace and service account obeys every rule SpiffeId.parse has (the
// 2048-byte limit, one segment per value), so nothing is issued that renewal or Config/Watch would then refuse;
// every claim it reads, in any JSON shape a signed token may carry, is refused with a stable code (never a
// TypeError that surfaces as INTERNAL), and a token issued in the future is refused.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { K8sJwtAttestor } from '../../../../control-plane/src/attestation/k8s-jwt-attestor.js';
import { kubernetesSpiffeId } from '../../../../control-plane/src/attestation/k8s-token-review.js';
import { makeTempDir } from '../../../helpers/run.js';

const ISSUER = 'https://kubernetes.default.svc';
const AUDIENCE = 'tessera';
const NOW_S = 1_700_000_000;

let key: CryptoKey;
let attestor: K8sJwtAttestor;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const tmp = await makeTempDir();
  cleanup = tmp.cleanup;
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwksFile = join(tmp.dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }] }));
  attestor = new K8sJwtAttestor({ trustDomain: TrustDomain.parse('example.org'), issuer: ISSUER, audience: AUDIENCE, jwksFile, clock: { nowMs: () => NOW_S * 1000 } });
});
afterAll(() => cleanup?.());

function saToken(ns: string, sa: string): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: [AUDIENCE], sub: `system:serviceaccount:${ns}:${sa}`, iat: NOW_S, exp: NOW_S + 600, 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa } } })
    .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'JWT' })
    .sign(key);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isTesseraError(e)) return e.code;
    throw e;
  }
  return 'attested';
}

describe('K8sJwtAttestor: the SPIFFE ID it gives', () => {
  test('a valid token gives spiffe://<td>/ns/<ns>/sa/<sa>, which parses back to itself', async () => {
    const id = (await attestor.attest(await saToken('shop', 'web'))).spiffeId;
    expect(id.toString()).toBe('spiffe://example.org/ns/shop/sa/web');
    expect(SpiffeId.parse(id.toString()).equals(id)).toBe(true);
  });

  test('a service account making the ID longer than 2048 bytes is refused, never issued (the audit case: ~2,100 characters)', async () => {
    expect(await codeOf(attestor.attest(await saToken('shop', 'a'.repeat(2100))))).toBe('TESSERA_ERR_ATTESTATION_JWT_CLAIMS');
    // The longest that fits is still attested, and its ID parses.
    const fits = 'a'.repeat(2048 - 'spiffe://example.org/ns/shop/sa/'.length);
    const id = (await attestor.attest(await saToken('shop', fits))).spiffeId;
    expect(Buffer.byteLength(id.toString())).toBe(2048);
    expect(SpiffeId.tryParse(id.toString()).ok).toBe(true);
    expect(await codeOf(attestor.attest(await saToken('shop', `${fits}a`)))).toBe('TESSERA_ERR_ATTESTATION_JWT_CLAIMS');
  });

  test('a namespace or service account holding "/" cannot add path segments', async () => {
    expect(await codeOf(attestor.attest(await saToken('shop', 'web/sa/admin')))).toBe('TESSERA_ERR_ATTESTATION_JWT_CLAIMS');
    expect(await codeOf(attestor.attest(await saToken('a/b', 'web')))).toBe('TESSERA_ERR_ATTESTATION_JWT_CLAIMS');
  });

  test('the TokenReview path builds its ID by the same rule', () => {
    expect(() => kubernetesSpiffeId('example.org', { namespace: 'shop', serviceAccount: 'a'.repeat(2100) })).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_TOO_LONG' }));
    expect(() => kubernetesSpiffeId('example.org', { namespace: 'shop', serviceAccount: 'web/sa/admin' })).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_SPIFFE_ID_BAD_PATH_CHAR' }));
  });
});

describe('K8sJwtAttestor: the instance a projected token proves', () => {
  test('a token naming its pod proves that pod (the rate-limit bucket it keeps across re-attestations); one without does not', async () => {
    const withPod = await new SignJWT({ iss: ISSUER, aud: [AUDIENCE], sub: 'system:serviceaccount:shop:web', iat: NOW_S, exp: NOW_S + 600, 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' }, pod: { name: 'web-1', uid: '5b1f0e8e-0000-4000-8000-000000000002' } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'JWT' })
      .sign(key);
    expect((await attestor.attest(withPod)).instance).toBe('pod:5b1f0e8e-0000-4000-8000-000000000002');
    expect((await attestor.attest(await saToken('shop', 'web'))).instance).toBeUndefined();
  });
});

/** A token with the good claims, `over` replacing (or, with undefined, removing) some of them. */
function tokenWith(over: Record<string, unknown>): Promise<string> {
  const claims: Record<string, unknown> = { iss: ISSUER, aud: [AUDIENCE], sub: 'system:serviceaccount:shop:web', iat: NOW_S, exp: NOW_S + 600, 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' }, pod: { name: 'web-1', uid: 'u-1' } } };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete claims[k];
    else claims[k] = v;
  }
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'JWT' }).sign(key);
}

const k8s = (over: Record<string, unknown>) => ({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' }, pod: { name: 'web-1', uid: 'u-1' }, ...over } });

describe('K8sJwtAttestor: every claim it reads, in every JSON shape', () => {
  test('the good token and its optional parts absent are attested', async () => {
    expect((await attestor.attest(await tokenWith({}))).instance).toBe('pod:u-1');
    expect((await attestor.attest(await tokenWith({ 'kubernetes.io': undefined }))).instance).toBeUndefined();
    expect((await attestor.attest(await tokenWith(k8s({ pod: undefined })))).instance).toBeUndefined();
    expect((await attestor.attest(await tokenWith(k8s({ pod: { name: 'web-1' } })))).instance).toBeUndefined();
    expect((await attestor.attest(await tokenWith({ iat: undefined }))).spiffeId.toString()).toBe('spiffe://example.org/ns/shop/sa/web');
  });

  test.each([
    ['kubernetes.io null (the audit case)', { 'kubernetes.io': null }],
    ['kubernetes.io a string', { 'kubernetes.io': 'x' }],
    ['kubernetes.io a number', { 'kubernetes.io': 0 }],
    ['kubernetes.io false', { 'kubernetes.io': false }],
    ['kubernetes.io an array', { 'kubernetes.io': [] }],
    ['kubernetes.io an array holding the object', { 'kubernetes.io': [{ namespace: 'shop', serviceaccount: { name: 'web' } }] }],
    ['namespace null', k8s({ namespace: null })],
    ['namespace an array', k8s({ namespace: ['shop'] })],
    ['serviceaccount null', k8s({ serviceaccount: null })],
    ['serviceaccount a string', k8s({ serviceaccount: 'web' })],
    ['serviceaccount an array', k8s({ serviceaccount: [{ name: 'web' }] })],
    ['serviceaccount.name null', k8s({ serviceaccount: { name: null } })],
    ['serviceaccount.name an array', k8s({ serviceaccount: { name: ['web'] } })],
    ['pod null', k8s({ pod: null })],
    ['pod a string', k8s({ pod: 'web-1' })],
    ['pod an array', k8s({ pod: [{ uid: 'u-1' }] })],
    ['pod.uid null', k8s({ pod: { uid: null } })],
    ['pod.uid a number', k8s({ pod: { uid: 5 } })],
    ['pod.uid an object', k8s({ pod: { uid: { toString: 'u-1' } } })],
    ['sub null', { sub: null }],
    ['sub a number', { sub: 5 }],
    ['sub an array', { sub: ['system:serviceaccount:shop:web'] }],
    ['sub an object', { sub: {} }],
    ['iat null', { iat: null }],
    ['iat a string', { iat: String(NOW_S) }],
    ['nbf a string', { nbf: String(NOW_S) }],
    ['exp null', { exp: null }],
    ['exp an array', { exp: [NOW_S + 600] }],
    ['iat one hour in the future (the audit case)', { iat: NOW_S + 3600 }],
    ['iat just past the 5 s skew allowance', { iat: NOW_S + 6 }],
  ])('UNAUTHENTICATED with JWT_CLAIMS: %s', async (_what, over) => {
    expect(await codeOf(attestor.attest(await tokenWith(over)))).toBe('TESSERA_ERR_ATTESTATION_JWT_CLAIMS');
  });

  test('iat within the skew allowance is attested (clocks differ a little)', async () => {
    expect(await codeOf(attestor.attest(await tokenWith({ iat: NOW_S + 5 })))).toBe('attested');
  });
});

describe('K8sJwtAttestor: a repeated member in the header or the claims is refused (audit 54b I1)', () => {
  /** A token of these exact header and claims texts, signed with the JWKS key: only the repetition is wrong. */
  async function raw(header: string, claimsText: string): Promise<string> {
    const b64 = (t: string) => Buffer.from(t).toString('base64url');
    const input = `${b64(header)}.${b64(claimsText)}`;
    // WebCrypto's ECDSA signature is the JWS form already (r || s).
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(input));
    return `${input}.${Buffer.from(sig).toString('base64url')}`;
  }
  const H = '"alg":"ES256","kid":"k","typ":"JWT"';
  const C = `"iss":"${ISSUER}","aud":["${AUDIENCE}"],"sub":"system:serviceaccount:shop:web","iat":${NOW_S},"exp":${NOW_S + 600}`;

  test('the same texts without a repetition are attested (the forge is sound)', async () => {
    expect(await codeOf(attestor.attest(await raw(`{${H}}`, `{${C}}`)))).toBe('attested');
  });

  test.each([
    ['header: alg twice', `{${H},"alg":"ES256"}`, `{${C}}`],
    ['header: kid spelled k\\u0069d', `{"k\\u0069d":"other",${H}}`, `{${C}}`],
    ['claims: sub of another service account first', `{${H}}`, `{"sub":"system:serviceaccount:kube-system:admin",${C}}`],
    ['claims: sub of another service account last, spelled \\u0073ub', `{${H}}`, `{${C},"\\u0073ub":"system:serviceaccount:kube-system:admin"}`],
    ['claims: aud twice', `{${H}}`, `{${C},"aud":["other"]}`],
    ['claims: exp twice', `{${H}}`, `{"exp":1,${C}}`],
    ['claims: a namespace twice inside kubernetes.io', `{${H}}`, `{${C},"kubernetes.io":{"namespace":"shop","namespace":"kube-system"}}`],
  ])('%s', async (_what, header, claimsText) => {
    const p = attestor.attest(await raw(header, claimsText));
    expect(await codeOf(p)).toBe('TESSERA_ERR_ATTESTATION_JWT_INVALID');
    await expect(p).rejects.toThrow(/repeats the member/);
  });
});
