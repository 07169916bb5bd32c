// Kubernetes attestation against an API server, end to end with real processes: the control plane reads the
// service-account keys by OIDC discovery over HTTPS (cluster CA, its own bearer token), verifies projected
// tokens offline, then asks TokenReview whether the bound pod still exists. The API server here is a small
// HTTPS endpoint on loopback that answers the three Kubernetes calls the way a cluster does (no cluster here).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair as generatePkiKey } from '../../common/pki/keys.js';
import { type RunningControlPlane, TD, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess } from '../helpers/control-plane.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const CP_TOKEN = 'control-plane-own-sa-token';

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let api: ReturnType<typeof createServer>;
let bundlePem: string;
type Key = Awaited<ReturnType<typeof generateKeyPair>>;
let keys: { kid: string; key: Key }[] = [];
const livePods = new Map<string, { ns: string; sa: string; pod: string }>(); // token → pod it is bound to
const seen = { discovery: 0, jwks: 0, reviews: 0, badBearer: 0 };

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse, base: string): Promise<void> {
  if (req.headers.authorization !== `Bearer ${CP_TOKEN}`) {
    seen.badBearer++;
    return json(res, 401, { kind: 'Status', code: 401 });
  }
  if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
    seen.discovery++;
    return json(res, 200, { issuer: ISSUER, jwks_uri: `${base}/openid/v1/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
  }
  if (req.method === 'GET' && req.url === '/openid/v1/jwks') {
    seen.jwks++;
    return json(res, 200, { keys: await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.key.publicKey)), kid: k.kid, alg: 'ES256', use: 'sig' }))) });
  }
  if (req.method === 'POST' && req.url === '/apis/authentication.k8s.io/v1/tokenreviews') {
    seen.reviews++;
    let body = '';
    for await (const c of req) body += c;
    const token = (JSON.parse(body) as { spec: { token: string } }).spec.token;
    const pod = livePods.get(token);
    if (!pod) return json(res, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', status: { authenticated: false, error: 'pod not found' } });
    return json(res, 201, {
      kind: 'TokenReview',
      apiVersion: 'authentication.k8s.io/v1',
      status: {
        authenticated: true,
        audiences: ['tessera'],
        user: { username: `system:serviceaccount:${pod.ns}:${pod.sa}`, uid: 'sa-uid', extra: { 'authentication.kubernetes.io/pod-name': [pod.pod], 'authentication.kubernetes.io/pod-uid': [`${pod.pod}-uid`] } },
      },
    });
  }
  json(res, 404, { kind: 'Status', code: 404 });
}

async function projectedToken(ns: string, sa: string, pod: string, kid = keys[0]!.kid): Promise<string> {
  const k = keys.find((x) => x.kid === kid)!;
  const jwt = await new SignJWT({ 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa }, pod: { name: pod } } })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(ISSUER)
    .setAudience('tessera')
    .setSubject(`system:serviceaccount:${ns}:${sa}`)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(k.key.privateKey);
  livePods.set(jwt, { ns, sa, pod });
  return jwt;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  keys = [{ kid: 'k1', key: await generateKeyPair('ES256') }];
  const clusterCa = await TestCa.create({ trustDomain: 'cluster.test', rootName: 'CN=Test cluster CA' });
  const serving = await clusterCa.mintSvid('spiffe://cluster.test/apiserver', { dnsSans: ['localhost'] });
  await writeFile(join(dir, 'cluster-ca.crt'), clusterCa.bundlePem());
  await writeFile(join(dir, 'sa-token'), CP_TOKEN, { mode: 0o600 });
  api = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => void handle(req, res, base));
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const base = `https://localhost:${(api.address() as AddressInfo).port}`;
  await mkdir(join(dir, 'policies'));
  const cfg = join(dir, 'cp.yaml');
  await writeFile(
    cfg,
    [
      `trustDomain: ${TD}`,
      'dataDir: ./data',
      'listen: 127.0.0.1:0',
      'adminListen: 127.0.0.1:0',
      'policies: { dir: ./policies }',
      'logLevel: info',
      'attestors:',
      '  joinToken: { enabled: false }',
      '  kubernetes:',
      `    issuer: ${ISSUER}`,
      '    audience: tessera',
      `    apiServer: { url: "${base}", caFile: cluster-ca.crt, tokenFile: sa-token, jwksRefresh: 1s }`,
      '',
    ].join('\n'),
  );
  cp = await startControlPlaneProcess(dir, cfg);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  api?.close();
  await cleanup?.();
});

function clients() {
  return controlPlaneClients(cp.grpc, bundlePem);
}

test('keys come from OIDC discovery with the cluster CA and the bearer token; a bound pod gets its SPIFFE ID', async () => {
  expect(seen.discovery).toBeGreaterThan(0);
  expect(seen.jwks).toBeGreaterThan(0);
  expect(seen.badBearer).toBe(0);
  const c = clients();
  const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: await projectedToken('payments', 'checkout', 'checkout-7d9f') });
  c.close();
  expect(r.err).toBeNull();
  expect(r.res!.spiffe_id).toBe(`spiffe://${TD}/ns/payments/sa/checkout`);
  expect(seen.reviews).toBeGreaterThan(0);
});

test('a token whose pod is gone is refused (TokenReview), even though its signature and expiry are fine', async () => {
  const token = await projectedToken('payments', 'checkout', 'deleted-pod');
  livePods.delete(token);
  const c = clients();
  const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: token });
  c.close();
  expect(r.err?.code).toBe(16); // UNAUTHENTICATED
  expect(errorCode(r.err)).toBe('TESSERA_ERR_K8S_TOKEN_REJECTED');
});

test('the cluster rotates its signing key: the control plane picks up the new JWKS by itself', async () => {
  keys.push({ kid: 'k2', key: await generateKeyPair('ES256') });
  const token = await projectedToken('shop', 'cart', 'cart-1', 'k2');
  const c = clients();
  const deadline = Date.now() + 10_000;
  let r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: token });
  while (r.err && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 300));
    r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: token });
  }
  c.close();
  expect(r.err).toBeNull();
  expect(r.res!.spiffe_id).toBe(`spiffe://${TD}/ns/shop/sa/cart`);
});

test('the cluster CA rotates: the mounted CA file is read again, and attestation carries on without a restart', async () => {
  // The API server now serves a certificate from a new cluster CA, and the kubelet swaps the mounted ca.crt (written
  // whole, then renamed over, as its atomic writer does). Before, the file was read once at start: every TokenReview
  // then failed TLS (TESSERA_ERR_K8S_FETCH_FAILED) until the control plane was restarted.
  const rotated = await TestCa.create({ trustDomain: 'cluster.test', rootName: 'CN=Test cluster CA 2' });
  const serving = await rotated.mintSvid('spiffe://cluster.test/apiserver', { dnsSans: ['localhost'] });
  await writeFile(join(dir, 'cluster-ca.crt.new'), rotated.bundlePem());
  await rename(join(dir, 'cluster-ca.crt.new'), join(dir, 'cluster-ca.crt'));
  api.setSecureContext({ cert: serving.chainPem, key: serving.keyPem });
  const reviews = seen.reviews;
  const c = clients();
  const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: await projectedToken('shop', 'orders', 'orders-1') });
  c.close();
  expect(errorCode(r.err)).toBeUndefined();
  expect(r.res!.spiffe_id).toBe(`spiffe://${TD}/ns/shop/sa/orders`);
  expect(seen.reviews).toBeGreaterThan(reviews);
});

test('the CA file gone for good: attestation goes on with the last one read, and the log says so once, then that it is back', async () => {
  // Audit 56c F8: the failed reads were kept quiet, so a CA file removed for good went unnoticed while the old CA
  // was used. Several attestations (each a TokenReview that reads the file) and JWKS refreshes read it meanwhile.
  const told = (text: string) => cp.stderr().split('\n').filter((l) => l.includes(text));
  const gone = 'kubernetes API CA file cannot be read';
  await rename(join(dir, 'cluster-ca.crt'), join(dir, 'cluster-ca.crt.away'));
  const reviews = seen.reviews;
  for (const pod of ['a', 'b', 'c']) {
    const c = clients();
    const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: await projectedToken('shop', 'orders', `orders-${pod}`) });
    c.close();
    expect(errorCode(r.err)).toBeUndefined();
  }
  expect(seen.reviews).toBeGreaterThanOrEqual(reviews + 3);
  expect(told(gone)).toHaveLength(1);
  expect(told(gone)[0]).toContain('TESSERA_ERR_CONFIG_UNREADABLE');
  expect(told(gone)[0]).toContain(join(dir, 'cluster-ca.crt'));
  await rename(join(dir, 'cluster-ca.crt.away'), join(dir, 'cluster-ca.crt'));
  const c = clients();
  const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: await projectedToken('shop', 'orders', 'orders-d') });
  c.close();
  expect(errorCode(r.err)).toBeUndefined();
  expect(told('kubernetes API CA file read again')).toHaveLength(1);
  expect(told(gone)).toHaveLength(1);
});
