// What changes under a control plane in a cluster, with the real `tessera control-plane` process (audit 38b F1, F2,
// F9). The API server (test/helpers/fake-kube-api.ts: OIDC discovery and the JWKS over real HTTPS, no cluster here)
// is away when the replica starts: it starts and serves, and attests within seconds of the API server's return, not a
// jwksRefresh (10 m) later; its own token file unreadable meanwhile is said once, with the file (the refresh's
// failure alone did not say why). The cluster then signs with a newly published key: the first token of it is attested,
// and made-up key ids are refused as unknown without a fetch each. The CA Secret, mounted read-only as the kubelet
// does, is replaced under the running replica: a warning says the CA files changed and a restart applies them.
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { generateKeyPair as generatePkiKey } from '../../common/pki/keys.js';
import { type RunningControlPlane, TD, controlPlaneClients, errorCode, signSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { FakeApiServer, type FakeKubeApi, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { freePort } from '../helpers/free-port.js';
import { makeTempDir } from '../helpers/run.js';
import { type SecretMount, canMount, mountSecret } from '../helpers/secret-mount.js';
import { until } from '../helpers/until.js';

const CP_TOKEN = 'control-plane-own-sa-token';
const MOUNTABLE = canMount();

let dir: string;
let cleanup: () => Promise<void>;
let api: FakeApiServer;
let kube: FakeKubeApi;
const running: RunningControlPlane[] = [];
const mounts: SecretMount[] = [];
const signing = new Map<string, CryptoKey>();

async function publish(kid: string): Promise<void> {
  const pair = await generateKeyPair('ES256');
  signing.set(kid, pair.privateKey);
  api.jwks.push({ ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' });
}

/** A projected service-account token as the kubelet gets it from the API server, signed by `kid`'s key. */
async function projectedToken(kid: string, key = signing.get(kid)!): Promise<string> {
  return new SignJWT({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'cart' }, pod: { name: 'cart-1', uid: 'cart-1-uid' } } })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(api.issuer)
    .setAudience('tessera')
    .setSubject('system:serviceaccount:shop:cart')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}

async function attest(cp: RunningControlPlane, token: string): Promise<{ id?: string; status?: number; code?: string }> {
  const c = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
  try {
    const r = await signSvid(c.identity, { csr: await createCsr(generatePkiKey(), {}), k8s_sa_token: token });
    return r.err ? { status: r.err.code, ...(errorCode(r.err) ? { code: errorCode(r.err)! } : {}) } : { id: r.res!.spiffe_id };
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  api = new FakeApiServer(CP_TOKEN);
  await publish('k1');
  // A fixed port: the API server goes away and comes back on it.
  kube = await startFakeKubeApi(dir, api, { port: await freePort() });
  await writeFile(join(dir, 'sa-token'), CP_TOKEN, { mode: 0o600 });
}, 30_000);

afterAll(async () => {
  for (const cp of running) await cp.stop();
  for (const m of mounts) await m.unmount();
  kube?.close();
  await cleanup?.();
});

/** A replica (its own data dir) with Kubernetes attestation through the API server, as the base install has it. */
async function k8sReplica(name: string): Promise<RunningControlPlane> {
  const d = join(dir, name);
  // The shipped jwksRefresh (10 m): nothing here may wait for it. TokenReview is off: the keys are the subject
  // (control-plane-k8s-api.test.ts covers TokenReview).
  const cfg = await writeControlPlaneConfig(
    d,
    [
      'attestors:',
      '  joinToken: { enabled: false }',
      '  kubernetes:',
      `    issuer: ${api.issuer}`,
      '    audience: tessera',
      `    apiServer: { url: "${kube.base}", caFile: ${join(dir, 'ca.crt')}, tokenFile: ${join(dir, 'sa-token')}, jwksRefresh: 10m, tokenReview: false }`,
    ].join('\n'),
  );
  const cp = await startControlPlaneProcess(d, cfg);
  running.push(cp);
  return cp;
}

describe('keys from the API server', () => {
  test('a replica started while the API server is away attests within seconds of its return, not a jwksRefresh later', async () => {
    await kube.down();
    // Its own token unreadable too, at first: said once, with the file, not only by the refresh's failure.
    await rename(join(dir, 'sa-token'), join(dir, 'sa-token.away'));
    const cp = await k8sReplica('started-alone');
    expect(cp.stderr()).toContain('kubernetes JWKS refresh failed');
    expect(cp.stderr()).toMatch(/sa-token.*kubernetes token file cannot be read/);
    // Said once, not at each retry (the first retries come within a second).
    await until('two retries failed', () => cp.stderr().split('kubernetes JWKS refresh failed').length - 1 >= 3, 10_000, 50);
    expect(cp.stderr().split('kubernetes token file cannot be read').length - 1).toBe(1);
    await rename(join(dir, 'sa-token.away'), join(dir, 'sa-token'));
    // Nothing to verify with yet: unavailable (try again), not a verdict on the token.
    const before = await attest(cp, await projectedToken('k1'));
    expect(before.status).toBe(grpc.status.UNAVAILABLE);

    await kube.up();
    // No attestation asks for the keys here: the refresher's own retry fetches them.
    await until('the keys fetched again by the retry', () => api.jwksReads() > 0, 40_000, 50);
    await until('the keys written', async () => (await readdir(cp.dataDir)).includes('k8s-jwks.json'), 5_000, 50);
    expect(cp.stderr().split('kubernetes token file cannot be read').length - 1).toBe(1);
    expect(await attest(cp, await projectedToken('k1'))).toEqual({ id: `spiffe://${TD}/ns/shop/sa/cart` });
    expect(await cp.stop()).toBe(0);
  }, 90_000);

  test('a token of a key the cluster has just published is attested on its first try; made-up key ids cost one fetch at most', async () => {
    const cp = await k8sReplica('rotation');
    expect(await attest(cp, await projectedToken('k1'))).toEqual({ id: `spiffe://${TD}/ns/shop/sa/cart` });
    // A refetch is made at most once per 5 s: leave that long after the start's fetch.
    const reads = api.jwksReads();
    await new Promise((r) => setTimeout(r, 5_500));
    await publish('k2');
    expect(await attest(cp, await projectedToken('k2'))).toEqual({ id: `spiffe://${TD}/ns/shop/sa/cart` });
    expect(api.jwksReads()).toBe(reads + 1);

    // A flood of tokens naming keys no one published: refused as unknown keys, the API server asked once at most.
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const flood = await Promise.all(Array.from({ length: 20 }, async (_, i) => attest(cp, await projectedToken(`made-up-${i}`, stranger))));
    for (const r of flood) expect(r).toEqual({ status: grpc.status.UNAUTHENTICATED, code: 'TESSERA_ERR_ATTESTATION_JWT_UNKNOWN_KEY' });
    expect(api.jwksReads()).toBeLessThanOrEqual(reads + 2);
    expect(cp.stderr()).not.toContain(CP_TOKEN);
    expect(await cp.stop()).toBe(0);
  }, 60_000);
});

describe.skipIf(!MOUNTABLE)('the CA Secret replaced under a running replica', () => {
  test('is logged as a warning naming the restart that applies it; the running replica keeps its CA', async () => {
    // A CA as `tessera control-plane` makes it, then its next authority prepared (the first step of a rotation).
    const seed = join(dir, 'seed');
    await mkdir(seed);
    const maker = await startControlPlaneProcess(seed, await writeControlPlaneConfig(seed));
    const caFiles = async () => Object.fromEntries(await Promise.all((await readdir(join(maker.dataDir, 'ca'))).map(async (f) => [f, await readFile(join(maker.dataDir, 'ca', f))] as const)));
    const current = await caFiles();
    // The request `tessera ca prepare` sends over admin.sock (the command has tests of its own).
    expect((await adminRequest<{ prepared: string }>(maker.dataDir, 'POST', '/v1/ca/prepare', {})).prepared).toEqual(expect.any(String));
    const prepared = await caFiles();
    expect(await maker.stop()).toBe(0);

    const r = join(dir, 'replica');
    await mkdir(join(r, 'data'), { recursive: true, mode: 0o700 });
    const secret = await mountSecret(join(r, 'secret'), join(r, 'data', 'ca'), current, { mode: 0o400 });
    mounts.push(secret);
    const cp = await startControlPlaneProcess(r, await writeControlPlaneConfig(r));
    running.push(cp);
    const bundle = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
    const warnings = () => cp.stderr().split('\n').filter((l) => l.includes('control plane: CA files'));
    expect(warnings()).toEqual([]);

    // `kubectl create secret generic tessera-ca --from-file=<copy>/ca/ … | kubectl apply -f -`: the kubelet swaps it in.
    await secret.update(prepared);
    await until('the change to be reported', () => warnings().length === 1, 20_000, 50);
    const line = JSON.parse(warnings()[0]!) as { level: string; msg: string; authorities: string[]; restart: string };
    expect(line.level).toBe('warn');
    expect(line.msg).toContain('the running process keeps the CA it started with: restart to apply them');
    expect(line.restart).toContain('kubectl -n tessera-system rollout restart deployment/tessera-control-plane');
    expect(line.authorities.some((a) => a.endsWith('(prepared)'))).toBe(true);
    // Not applied: the bundle this replica serves is the one it started with.
    expect(await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8')).toBe(bundle);
    expect(await cp.stop()).toBe(0);
  }, 90_000);
});
