// An injected sidecar (the proxy config the injector writes, Kubernetes attestation with a projected token) whose
// container restarts after a CA rotation done as docs/kubernetes.md says: prepare on a local control plane over a
// copy of the CA, the Secret replaced, the control plane restarted; the same for activate (audit 53c F1). Its
// bootstrap bundle is the pod's annotation, frozen at admission (the old root only): the restarted sidecar verifies
// the control plane only with the trust bundle it kept in the injector's stateDir, on the pod's memory emptyDir
// (0777, as the kubelet makes it). Real `tessera control-plane` processes, real `tessera proxy`, the fake API server.
import { chmod, cp as copy, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { resolveInjectorConfig } from '../../control-plane/src/injector/injector-config.js';
import { buildProxyConfig, renderProxyConfigYaml, SIDECAR_PATHS } from '../../control-plane/src/injector/proxy-config.js';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { FakeApiServer, type FakeKubeApi, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { freePort } from '../helpers/free-port.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const CP_TOKEN = 'control-plane-own-sa-token';
const CART = `spiffe://${TD}/ns/shop/sa/cart`;

let dir: string;
let cleanup: () => Promise<void>;
let api: FakeApiServer;
let kube: FakeKubeApi;
let cp: RunningControlPlane | undefined;
let cpConfig: string;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  api = new FakeApiServer(CP_TOKEN);
  kube = await startFakeKubeApi(dir, api);
  await writeFile(join(dir, 'sa-token'), CP_TOKEN, { mode: 0o600 });
  const pair = await generateKeyPair('ES256');
  api.jwks.push({ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' });
  // The kubelet's projected token of the pod, audience tessera; it stays in place across container restarts.
  const token = await new SignJWT({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'cart' }, pod: { name: 'cart-0', uid: 'cart-0-uid' } } })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(api.issuer)
    .setAudience('tessera')
    .setSubject('system:serviceaccount:shop:cart')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(pair.privateKey);
  await writeFile(join(dir, 'token'), token, { mode: 0o600 });
  // A fixed address: the restarted control plane comes back where the sidecar looks for it. Short SVIDs: renewals
  // within seconds.
  cpConfig = await writeControlPlaneConfig(
    join(dir, 'cp'),
    [
      'svid: { ttl: 16s, backdate: 3s }',
      'attestors:',
      '  joinToken: { enabled: false }',
      '  kubernetes:',
      `    issuer: ${api.issuer}`,
      '    audience: tessera',
      `    apiServer: { url: "${kube.base}", caFile: ${join(dir, 'ca.crt')}, tokenFile: ${join(dir, 'sa-token')}, tokenReview: false }`,
    ].join('\n'),
    `127.0.0.1:${await freePort()}`,
  );
  cp = await startControlPlaneProcess(join(dir, 'cp'), cpConfig);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await cp?.stop();
  kube?.close();
  await cleanup?.();
});

/**
 * One step of "CA rotation on Kubernetes": the command on a control plane started locally over a writable copy of the
 * CA directory, the result put back as the kubelet swaps the Secret in, and the control plane restarted.
 */
async function rotationStep(step: 'prepare' | 'activate'): Promise<void> {
  const local = join(dir, `local-${step}`);
  await mkdir(join(local, 'data'), { recursive: true, mode: 0o700 });
  await copy(join(cp!.dataDir, 'ca'), join(local, 'data', 'ca'), { recursive: true });
  const localCp = await startControlPlaneProcess(local, await writeControlPlaneConfig(local));
  // The request `tessera ca <step>` sends over admin.sock (the commands have tests of their own).
  await adminRequest(localCp.dataDir, 'POST', `/v1/ca/${step}`, {});
  expect(await localCp.stop()).toBe(0);
  expect(await cp!.stop()).toBe(0);
  cp = undefined;
  await rm(join(dir, 'cp', 'data', 'ca'), { recursive: true });
  await copy(join(local, 'data', 'ca'), join(dir, 'cp', 'data', 'ca'), { recursive: true });
  cp = await startControlPlaneProcess(join(dir, 'cp'), cpConfig);
}

interface Certs {
  serial: string;
  bundles: { trustDomain: string; fingerprints: string[] }[];
}
const certs = async (p: ProxyProcess) => (await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as Certs;
/** The audit log's issuances to the pod by attestation (renewals are attested as "x509svid:<serial>"). */
const attestations = async () =>
  (await readFile(join(cp!.dataDir, 'audit.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; spiffeId?: string; attestedAs?: string })
    .filter((e) => e.event === 'svid.issued' && e.spiffeId === CART && !e.attestedAs?.startsWith('x509svid:'));
const roots = async (p: ProxyProcess) => (await certs(p)).bundles.find((b) => b.trustDomain === TD)?.fingerprints.length ?? 0;

test('a sidecar container restarted after prepare → restart → activate → restart is ready again with its annotation bundle of before', async () => {
  // The pod as admitted: the downward-API files (config, bundle of that moment), the memory emptyDir at /tmp.
  const pod = join(dir, 'pod');
  const podTmp = join(pod, 'tmp');
  await mkdir(podTmp, { recursive: true });
  await chmod(podTmp, 0o777);
  await copy(join(cp!.dataDir, 'bundle.pem'), join(pod, 'bundle.pem'));
  const injector = resolveInjectorConfig({ proxyImage: 'registry.example/tessera:0.1.0', controlPlaneAddress: cp!.grpc, version: '0.1.0', podBindAddress: '127.0.0.1' });
  // The injector's config with every path it names moved into the temp dir (an unknown one fails the test), and the
  // admin port left to the kernel.
  const moved = new Map<string, string>([
    [SIDECAR_PATHS.bundleFile, join(pod, 'bundle.pem')],
    [SIDECAR_PATHS.tokenFile, join(dir, 'token')],
    [SIDECAR_PATHS.workloadSocket, join(pod, 'workload.sock')],
  ]);
  const move = (path: string): string => {
    if (path.startsWith(`${SIDECAR_PATHS.tmpDir}/`)) return join(podTmp, path.slice(SIDECAR_PATHS.tmpDir.length));
    if (!moved.has(path)) throw new Error(`the injector's config names ${path}, which this test does not place`);
    return moved.get(path)!;
  };
  const yaml = renderProxyConfigYaml(buildProxyConfig(injector, [], []))
    .replace(/: (\/\S*)$/gm, (_, path: string) => `: ${move(path)}`)
    .replace(/listen: 127\.0\.0\.1:15000$/m, 'listen: 127.0.0.1:0');
  expect(yaml).toContain('listen: 127.0.0.1:0');
  const config = join(pod, 'proxy.yaml');
  await writeFile(config, yaml);

  const first = await startProxyProcess(config, 30_000);
  running.push(first);
  expect(await roots(first)).toBe(1);

  await rotationStep('prepare');
  await until('the running sidecar got the prepared root', async () => (await roots(first)) === 2, 20_000);
  await rotationStep('activate');
  // The control plane now serves a chain to the new root, which the pod's bootstrap bundle does not hold.
  expect(await readFile(join(cp!.dataDir, 'bundle.pem'), 'utf8')).not.toBe(await readFile(join(pod, 'bundle.pem'), 'utf8'));
  const before = (await certs(first)).serial;
  await until('a renewal from the restarted control plane', async () => (await certs(first)).serial !== before, 30_000);
  expect(await first.stop()).toBe(0);

  // The container restarts: same pod, same files, same projected token, a new process.
  const second = await startProxyProcess(config, 20_000);
  running.push(second);
  const logs = second.stdout() + second.stderr();
  expect(logs).toContain('trust bundle restored from the state dir');
  expect(logs).toContain('SVID restored from the state dir');
  const stateDir = join(podTmp, 'tessera-state');
  expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
  // The emptyDir above it stays as the kubelet made it: only the state dir itself must be the proxy's alone.
  expect((await stat(podTmp)).mode & 0o777).toBe(0o777);
  expect((await stat(join(stateDir, 'svid.key.pem'))).mode & 0o777).toBe(0o600);
  const restored = (await certs(second)).serial;
  await until('a renewal after the restart', async () => (await certs(second)).serial !== restored, 30_000);
  expect(await second.stop()).toBe(0);

  // The kept SVID cannot be used (gone here; one expired during a long crash loop, its renewal refused, ends the same
  // way): it attests again with the projected token, and verifies the control plane with the kept bundle.
  await rm(join(stateDir, 'svid.key.pem'));
  const third = await startProxyProcess(config, 20_000);
  running.push(third);
  expect(third.stdout() + third.stderr()).toContain('trust bundle restored from the state dir');
  expect(third.stdout() + third.stderr()).not.toContain('SVID restored from the state dir');
  // Attested twice in all: the first start and this one (the restart before it restored its SVID).
  expect(await attestations()).toHaveLength(2);
}, 120_000);
