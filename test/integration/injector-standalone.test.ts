// `tessera injector` as its own process: real HTTPS on loopback, AdmissionReviews POSTed by curl, while no control
// plane runs at all and after the control plane it took its bundle from was killed; bundle changes reach new pods;
// bad files are coded one-line start-up errors naming the file; SIGTERM exits 0.
import { copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { admissionReview, appPod, INJECTOR_HOST, type ServingPki, servingPki } from '../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../helpers/json-patch.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

interface Review {
  response: { uid: string; allowed: boolean; patch?: string; status?: { code: number; message: string } };
}
interface InjectedPod {
  metadata: { annotations: Record<string, string> };
  spec: { initContainers: { name: string; resources: { requests: { memory: string } } }[] };
}

let dir: string;
let cleanup: () => Promise<void>;
let pki: ServingPki;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  pki = await servingPki();
  await writeFile(join(dir, 'webhook-ca.pem'), pki.caPem);
  await writeFile(join(dir, 'tls.crt'), pki.certPem);
  await writeFile(join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 });
});

afterAll(async () => {
  for (const stop of stops) await stop();
  await cleanup?.();
});

async function writeInjectorConfig(name: string, bundleFile: string, extra = '', keyFile = 'tls.key'): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  const lines = [
    'listen: 127.0.0.1:0',
    'certFile: tls.crt',
    `keyFile: ${keyFile}`,
    `bundleFile: ${bundleFile}`,
    'proxyImage: registry.example/tessera:0.1.0',
    'controlPlaneAddress: tessera-control-plane.tessera-system.svc:8443',
    'logLevel: info',
    extra,
  ];
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

async function startInjector(configFile: string) {
  const proc = await startReadyProcess(['injector', '--config', configFile], 'tessera injector: ready');
  stops.push(() => proc.stop(5_000));
  const m = /tessera injector: listening \S+:(\d+)/.exec(proc.stdout());
  if (!m) throw new Error(`no listening line: ${proc.stdout()}`);
  return { proc, port: Number(m[1]) };
}

/** curl as the API server calls it: HTTPS to the Service name, the serving certificate verified. */
async function curl(port: number, path: string, body?: string): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--cacert', join(dir, 'webhook-ca.pem'), '--resolve', `${INJECTOR_HOST}:${port}:127.0.0.1`, '-w', '\n%{http_code}'];
  if (body !== undefined) {
    const file = join(dir, `review-${port}-${Date.now()}.json`);
    await writeFile(file, body);
    args.push('-H', 'content-type: application/json', '--data-binary', `@${file}`);
  }
  const r = await run('curl', [...args, `https://${INJECTOR_HOST}:${port}${path}`]);
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

async function inject(port: number, uid: string): Promise<InjectedPod> {
  const review = admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), { uid });
  const res = await curl(port, '/inject?timeout=5s', JSON.stringify(review));
  expect(res.status).toBe(200);
  const answer = JSON.parse(res.body) as Review;
  expect(answer.response).toMatchObject({ uid, allowed: true });
  const ops = JSON.parse(Buffer.from(answer.response.patch!, 'base64').toString('utf8'));
  return applyJsonPatch((review.request as { object: object }).object, ops) as unknown as InjectedPod;
}

const portAnswers = (hostPort: string) =>
  new Promise<boolean>((resolve) => {
    const i = hostPort.lastIndexOf(':');
    const s = connect(Number(hostPort.slice(i + 1)), hostPort.slice(0, i));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe('tessera injector without a control plane', () => {
  test('no control plane has ever run: ready, injects with the bundle file, picks up a new bundle, keeps the last good one', async () => {
    const ca1 = await TestCa.create({ trustDomain: 'cluster.local' });
    const bundleFile = join(dir, 'bundle.pem');
    await writeFile(bundleFile, await ca1.bundlePem());
    const { port } = await startInjector(await writeInjectorConfig('alone', 'bundle.pem'));
    expect(await curl(port, '/ready')).toEqual({ status: 200, body: 'ready\n' });
    expect((await curl(port, '/healthz')).status).toBe(200);

    const pod = await inject(port, '11111111-0000-4000-8000-000000000001');
    expect(pod.spec.initContainers[0]!.name).toBe('tessera-proxy');
    expect(pod.metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(await ca1.bundlePem());
    expect(pod.metadata.annotations['tessera.dev/injected']).toMatch(/^\d+\.\d+\.\d+/);

    // A CA `prepare` adds an authority: the ConfigMap's file changes (atomically), the next pod gets it.
    const ca2 = await TestCa.create({ trustDomain: 'cluster.local' });
    const both = `${await ca1.bundlePem()}${await ca2.bundlePem()}`;
    await writeFile(`${bundleFile}.new`, both);
    await rename(`${bundleFile}.new`, bundleFile);
    expect((await inject(port, '11111111-0000-4000-8000-000000000002')).metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(both);

    // Only certificates ever reach a pod annotation, whatever else the file holds.
    await writeFile(bundleFile, `${both}${pki.keyPem}`);
    const mixed = (await inject(port, '11111111-0000-4000-8000-000000000005')).metadata.annotations['tessera.dev/bootstrap-bundle']!;
    expect(mixed).toBe(both);
    expect(mixed).not.toContain('PRIVATE KEY');

    // The file goes bad: the last good bundle stays in use, the injector stays ready.
    await writeFile(bundleFile, 'not a bundle');
    expect((await inject(port, '11111111-0000-4000-8000-000000000003')).metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(both);
    await rm(bundleFile);
    expect((await inject(port, '11111111-0000-4000-8000-000000000004')).metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(both);
    expect((await curl(port, '/ready')).status).toBe(200);
  }, 60_000);

  test('the control plane it took its bundle from is killed: injection goes on with that bundle', async () => {
    const cpDir = join(dir, 'cp');
    const cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir));
    stops.push(() => cp.stop(5_000));
    // In a cluster the bundle reaches the injector as a ConfigMap; here, a copy of the control plane's bundle.pem.
    const bundleFile = join(dir, 'cp-bundle.pem');
    await copyFile(join(cp.dataDir, 'bundle.pem'), bundleFile);
    const cpBundle = await readFile(bundleFile, 'utf8');
    const { port } = await startInjector(await writeInjectorConfig('with-cp', 'cp-bundle.pem'));
    expect((await inject(port, '22222222-0000-4000-8000-000000000001')).metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(cpBundle);

    cp.proc.kill('SIGKILL');
    await new Promise((r) => cp.proc.once('exit', r));
    expect(await portAnswers(cp.grpc)).toBe(false);
    const pod = await inject(port, '22222222-0000-4000-8000-000000000002');
    expect(pod.metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(cpBundle);
    expect(pod.spec.initContainers[0]!.name).toBe('tessera-proxy');
    expect((await curl(port, '/ready')).status).toBe(200);
  }, 60_000);

  test('SIGTERM: /ready answers 503 (not a refused connection) for the drain window, then a clean exit 0', async () => {
    const ca = await TestCa.create({ trustDomain: 'cluster.local' });
    await writeFile(join(dir, 'term-bundle.pem'), await ca.bundlePem());
    const { proc, port } = await startInjector(await writeInjectorConfig('term', 'term-bundle.pem'));
    const t0 = Date.now();
    const stopped = proc.stop(10_000);
    await until('SIGTERM to be handled', () => proc.stderr().includes('"stopping"'), 5_000, 20);
    expect(await curl(port, '/ready')).toEqual({ status: 503, body: 'shutting down\n' });
    // Admissions are still answered while the endpoint leaves the Service.
    const review = admissionReview(appPod(), { uid: '33333333-0000-4000-8000-000000000001' });
    const answer = await curl(port, '/inject', JSON.stringify(review));
    expect(JSON.parse(answer.body).response).toMatchObject({ allowed: true });
    expect(await stopped).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500);
    expect(proc.stderr()).toContain('injector stopped');
    expect(await portAnswers(`127.0.0.1:${port}`)).toBe(false);
  }, 30_000);
});

describe('tessera injector start-up errors are coded and name the file', () => {
  const okBundle = async () => {
    await writeFile(join(dir, 'ok-bundle.pem'), pki.caPem);
    return 'ok-bundle.pem';
  };
  test.each([
    ['missing bundle', async () => writeInjectorConfig('e1', 'nope.pem'), 'TESSERA_ERR_INJECT_NO_BUNDLE', 'nope.pem'],
    [
      'bundle is not PEM',
      async () => {
        await writeFile(join(dir, 'garbage.pem'), 'hello');
        return writeInjectorConfig('e2', 'garbage.pem');
      },
      'TESSERA_ERR_INJECT_NO_BUNDLE',
      'garbage.pem',
    ],
    [
      'key of another certificate',
      async () => {
        await writeFile(join(dir, 'other.key'), (await servingPki()).keyPem, { mode: 0o600 });
        return writeInjectorConfig('e3', await okBundle(), '', 'other.key');
      },
      'TESSERA_ERR_INJECT_BAD_CONFIG',
      'other.key',
    ],
    ['missing key file', async () => writeInjectorConfig('e4', await okBundle(), '', 'absent.key'), 'TESSERA_ERR_CONFIG_UNREADABLE', 'absent.key'],
    ['unknown key', async () => writeInjectorConfig('e5', await okBundle(), 'replicas: 2'), 'TESSERA_ERR_CONFIG_INVALID', 'replicas'],
    ['bad sidecar memory quantity', async () => writeInjectorConfig('e6', await okBundle(), 'resources: { requests: { memory: lots } }'), 'TESSERA_ERR_CONFIG_INVALID', 'resources.requests.memory'],
    [
      // Audit 61c I2: coded as the control plane's start failure before.
      'listen address in use',
      async () => {
        const busy = createServer();
        await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
        stops.push(() => new Promise<void>((r) => busy.close(() => r())));
        const file = await writeInjectorConfig('e7', await okBundle());
        await writeFile(file, (await readFile(file, 'utf8')).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${(busy.address() as AddressInfo).port}`));
        return file;
      },
      'TESSERA_ERR_INJECTOR_START_FAILED',
      'EADDRINUSE',
    ],
  ])('%s', async (_name, make, code, named) => {
    const r = await tessera(['injector', '--config', await make()], { timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(code);
    expect(r.stderr).toContain(named);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
