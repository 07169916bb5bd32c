// The issuance rate limit keyed so that one pod cannot starve the others of its ID (audit 11 F2): a renewal draws
// from its chain's bucket (the serial its chain of renewals began with, recorded with every SVID), an attestation
// from the ID's. A pod renewing in a loop with the key its Workload API hands out spends only its own bucket.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair as generateJoseKeys } from 'jose';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { K8sAttestation } from '../../../../control-plane/src/attestation/k8s-attestation.js';
import { K8sJwtAttestor } from '../../../../control-plane/src/attestation/k8s-jwt-attestor.js';
import type { SignResult } from '../../../../control-plane/src/issuance/issuer.js';
import { RateLimiter } from '../../../../control-plane/src/issuance/rate-limiter.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const td = TrustDomain.parse(TD);
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const K8S_ISSUER = 'https://kubernetes.default.svc';

describe('issuance rate limit per pod', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let t: TestIssuer;
  let k8sKey: CryptoKey;
  const clock = { nowMs: () => Date.now() };

  beforeEach(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
    const revocations = await openTestRevocations(parts, clock);
    // Kubernetes attestation with real projected tokens, signed against a JWKS file.
    const pair = await generateJoseKeys('ES256');
    k8sKey = pair.privateKey;
    const jwksFile = join(tmp.dir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }] }));
    const kubernetes = new K8sAttestation(new K8sJwtAttestor({ trustDomain: td, issuer: K8S_ISSUER, audience: 'tessera', jwksFile, clock }));
    // 4 at once, no refill within the test.
    t = testIssuer(parts, clock, revocations, new RateLimiter({ burst: 4, perMinute: 0.001 }, clock), { kubernetes });
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));
  const attest = (key: KeyPair) => t.attest(key, WEB);
  const renew = (key: KeyPair, svid: SignResult) => t.renew(key, svid, WEB);

  /** A projected service-account token of pod `uid` (web's service account). */
  const podToken = (uid: string) =>
    new SignJWT({ iss: K8S_ISSUER, aud: ['tessera'], sub: 'system:serviceaccount:default:web', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600, 'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'web' }, pod: { name: uid, uid } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'JWT' })
      .sign(k8sKey);
  const attestPod = async (key: KeyPair, uid: string) => t.issuer.sign({ csrDer: await createCsr(key, { uriSans: [WEB] }), evidence: { kind: 'k8s_sa_token', token: await podToken(uid) }, peerChain: [], caller: 'test', requestedTtlMs: 0 });

  test('a pod re-attesting with its reusable token in a loop spends its own bucket, not its sibling\'s, and its chain stays its own', async () => {
    const key = generateKeyPair();
    const codes: string[] = [];
    let first: SignResult | undefined;
    for (let i = 0; i < 6; i++) {
      const r = await attestPod(key, 'pod-a').catch((e: unknown) => e);
      if (isTesseraError(r)) codes.push(r.code);
      else {
        codes.push('issued');
        first ??= r as SignResult;
      }
    }
    expect(codes).toEqual(['issued', 'issued', 'issued', 'issued', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED']);
    // A sibling pod of the same service account attests as ever.
    expect(await codeOf(attestPod(generateKeyPair(), 'pod-b'))).toBe('issued');
    // Renewing does not give pod A a fresh bucket: its SVIDs' chain is the pod.
    expect(await t.issuer.lineageOf(first!.serial)).toBe('pod:pod-a');
    expect(await codeOf(renew(key, first!))).toBe('TESSERA_ERR_ISSUANCE_RATE_LIMITED');
  });

  test('a pod renewing in a loop exhausts its own chain, not its sibling\'s renewals nor a new pod\'s attestation', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const podA = await attest(a);
    const podB = await attest(b);
    // Pod A renews in a loop, each time with the SVID it just got: its chain's bucket (4) runs out.
    let current = podA;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const next = await renew(a, current).catch((e: unknown) => e);
      if (isTesseraError(next)) codes.push(next.code);
      else {
        codes.push('issued');
        current = next as SignResult;
      }
    }
    expect(codes).toEqual(['issued', 'issued', 'issued', 'issued', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED', 'TESSERA_ERR_ISSUANCE_RATE_LIMITED']);
    // Its sibling renews as ever, and a new pod of the ID attests.
    expect(await codeOf(renew(b, podB))).toBe('issued');
    expect(await codeOf(attest(generateKeyPair()))).toBe('issued');
    // Every SVID of A's chain names the serial the chain began with.
    expect(await t.issuer.lineageOf(current.serial)).toBe(podA.serial);
    expect(await t.issuer.lineageOf(podB.serial)).toBe(podB.serial);
  });
});
