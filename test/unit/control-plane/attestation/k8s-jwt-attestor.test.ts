// Kubernetes projected-token attestation (K8sJwtAttestor) with real tokens signed by jose against a JWKS file:
// the SPIFFE ID built from the token's namespace and service account obeys every rule SpiffeId.parse has (the
// 2048-byte limit, one segment per value), so nothing is issued that renewal or Config/Watch would then refuse.
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
