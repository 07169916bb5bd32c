// Why a Kubernetes attestation was refused reaches the audit row and the control plane's stderr (audit 55c F3): a
// real `tessera control-plane` with an API server (test/helpers/fake-kube-api.ts: OIDC discovery, JWKS, TokenReview
// answered per test), real projected-style tokens over gRPC. Each refusal's row carries its code, a fixed `reason`
// and the account the token claims (and, when TokenReview names another, that one); a warn line says the same; the
// workload is told the catalogue text only; no part of the token is written anywhere.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type JWTPayload, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode } from '../../common/errors.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair as generatePkiKey } from '../../common/pki/keys.js';
import { type RunningControlPlane, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { FakeApiServer, type FakeKubeApi, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { makeTempDir } from '../helpers/run.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const CP_TOKEN = 'control-plane-own-sa-token';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let kube: FakeKubeApi;
let bundlePem: string;
const api = new FakeApiServer(CP_TOKEN);
type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let key: Key;
let stranger: Key;

/** TokenReview's answer for the token now under review. */
let review: { status: number; body: unknown } = { status: 201, body: {} };
const reviewed = (status: Record<string, unknown>) => ({ status: 201, body: { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', status } });
const user = (ns: string, sa: string, pod = true) => ({
  username: `system:serviceaccount:${ns}:${sa}`,
  extra: pod ? { 'authentication.kubernetes.io/pod-name': ['web-1'], 'authentication.kubernetes.io/pod-uid': ['web-1-uid'] } : {},
});

async function token(claims: JWTPayload = {}, signer: Key = key): Promise<string> {
  return new SignJWT({ sub: 'system:serviceaccount:default:web', iss: ISSUER, aud: 'tessera', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuedAt()
    .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '10m')
    .sign(signer);
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  stranger = (await generateKeyPair('ES256')).privateKey;
  api.issuer = ISSUER;
  api.jwks.push({ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' });
  api.tokenReview = () => review;
  kube = await startFakeKubeApi(dir, api);
  await writeFile(join(dir, 'sa-token'), CP_TOKEN, { mode: 0o600 });
  const k8s = ['attestors:', '  joinToken: { enabled: false }', '  kubernetes:', `    issuer: ${ISSUER}`, '    audience: tessera', `    apiServer: { url: "${kube.base}", caFile: ca.crt, tokenFile: sa-token }`].join('\n');
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, k8s));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  kube?.close();
  await cleanup?.();
});

async function lastRefusal(): Promise<Record<string, unknown>> {
  const rows = (await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return rows.filter((r) => r['event'] === 'svid.refused').at(-1) ?? {};
}

const WEB = 'ns/default/sa/web';
const cases: [string, () => Promise<string>, { status: number; body: unknown }, ErrorCode, string, string | undefined, string?][] = [
  ['TokenReview names another service account', () => token(), reviewed({ authenticated: true, audiences: ['tessera'], user: user('kube-system', 'admin') }), 'TESSERA_ERR_K8S_TOKEN_REJECTED', 'TokenReview names another service account', WEB, 'ns/kube-system/sa/admin'],
  ['the token was revoked', () => token(), reviewed({ authenticated: false, error: 'token has been invalidated' }), 'TESSERA_ERR_K8S_TOKEN_REJECTED', 'TokenReview: not authenticated', WEB],
  ['no pod binding', () => token(), reviewed({ authenticated: true, audiences: ['tessera'], user: user('default', 'web', false) }), 'TESSERA_ERR_K8S_TOKEN_REJECTED', 'TokenReview: not bound to a pod', WEB],
  ['not for the audience', () => token(), reviewed({ authenticated: true, audiences: [], user: user('default', 'web') }), 'TESSERA_ERR_K8S_TOKEN_REJECTED', 'TokenReview: audience missing', WEB],
  ['RBAC forbids tokenreviews', () => token(), { status: 403, body: { kind: 'Status', code: 403 } }, 'TESSERA_ERR_K8S_FETCH_FAILED', 'TokenReview: HTTP 403', WEB],
  ['the API server fails', () => token(), { status: 500, body: { kind: 'Status', code: 500 } }, 'TESSERA_ERR_K8S_FETCH_FAILED', 'TokenReview: HTTP 500', WEB],
  ['an oversized answer', () => token(), reviewed({ authenticated: true, pad: 'x'.repeat(2 << 20) }), 'TESSERA_ERR_K8S_FETCH_FAILED', 'TokenReview: answer larger than 1048576 bytes', WEB],
  ['an expired token', () => token({ exp: Math.floor(Date.now() / 1000) - 3600 }), reviewed({}), 'TESSERA_ERR_ATTESTATION_JWT_EXPIRED', 'exp is past', WEB],
  ['another audience', () => token({ aud: 'vault', sub: 'system:serviceaccount:shop:cart' }), reviewed({}), 'TESSERA_ERR_ATTESTATION_JWT_AUDIENCE', 'aud lacks the configured audience', 'ns/shop/sa/cart'],
  ['another issuer', () => token({ iss: 'https://elsewhere' }), reviewed({}), 'TESSERA_ERR_ATTESTATION_JWT_ISSUER', 'iss is not the configured issuer', WEB],
  ['another key under the same kid', () => token({}, stranger), reviewed({}), 'TESSERA_ERR_ATTESTATION_JWT_INVALID', 'the signature does not verify', WEB],
  ['a sub that is not a service account', () => token({ sub: 'alice' }), reviewed({}), 'TESSERA_ERR_ATTESTATION_JWT_CLAIMS', 'sub is not system:serviceaccount:<ns>:<sa>', undefined],
];

test.each(cases)('%s: the row and a warn line name the reason and the claimed account; the workload gets the catalogue text', async (_name, make, answer, code, reason, claimed, otherAccount) => {
  review = answer;
  const jwt = await make();
  const c = controlPlaneClients(cp.grpc, bundlePem);
  const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: jwt });
  c.close();
  expect(errorCode(r.err)).toBe(code);
  expect(r.err?.details).toBe(`${code}: ${ERROR_CATALOGUE[code].message}`);
  const row = await lastRefusal();
  expect(row).toMatchObject({ code, attestor: 'k8s_psat', reason });
  expect(row['claimed']).toBe(claimed);
  expect(row['reviewed']).toBe(otherAccount);
  const line = cp.stderr().split('\n').filter((l) => l.includes('kubernetes attestation refused')).at(-1) ?? '';
  expect(line).toContain(code);
  expect(line).toContain(reason);
  if (claimed) expect(line).toContain(claimed);
  // Neither the token nor its signature is written anywhere.
  const signature = jwt.split('.')[2]!;
  expect(await readFile(join(cp.dataDir, 'audit.log'), 'utf8')).not.toContain(signature);
  expect(cp.stderr()).not.toContain(signature);
});
