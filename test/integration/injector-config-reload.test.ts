// `tessera injector` as its own process, its config file laid out as the kubelet lays out a ConfigMap volume
// (injector.yaml -> ..data/injector.yaml, ..data -> ..<timestamp>) and edited by a `..data` symlink swap (audit 31b
// N1): the next AdmissionReview gets the new proxyImage and resources, a file that does not validate keeps the
// previous settings (a coded warning names file, line and key), and a `listen` change is kept and logged as needing a
// restart. An admission during a burst of swaps takes its bundle and its settings from one version (audit 32a F3).
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ANNOTATION } from '../../control-plane/src/injector/annotations.js';
import { applyJsonPatch } from '../helpers/json-patch.js';
import { INJECTOR_HOST, admissionReview, appPod, servingPki } from '../helpers/injector-fixtures.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

interface Sidecar {
  name: string;
  image: string;
  resources: { requests: { memory: string } };
}

let dir: string;
let cleanup: () => Promise<void>;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const pki = await servingPki();
  await writeFile(join(dir, 'webhook-ca.pem'), pki.caPem);
  await writeFile(join(dir, 'tls.crt'), pki.certPem);
  await writeFile(join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), await (await TestCa.create({ trustDomain: 'cluster.local' })).bundlePem());
});

afterAll(async () => {
  for (const stop of stops) await stop();
  await cleanup?.();
});

const cfgDir = () => join(dir, 'config');

function yaml(over: Record<string, string> = {}): string {
  const keys: Record<string, string> = {
    listen: '127.0.0.1:0',
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    bundleFile: join(dir, 'bundle.pem'),
    proxyImage: 'registry.example/tessera:0.1.0',
    controlPlaneAddress: 'tessera-control-plane.tessera-system.svc:8443',
    logLevel: 'info',
    ...over,
  };
  return `${Object.entries(keys)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')}\n`;
}

let generation = 0;
/** A new timestamped directory holding injector.yaml, then `..data` renamed over to point at it: the kubelet's swap. */
async function swapIn(text: string, into = cfgDir()): Promise<void> {
  generation += 1;
  const stamp = `..2026_01_01_00_00_${String(generation).padStart(2, '0')}.${generation}`;
  await mkdir(join(into, stamp));
  await writeFile(join(into, stamp, 'injector.yaml'), text);
  await symlink(stamp, join(into, '..data_tmp'));
  await rename(join(into, '..data_tmp'), join(into, '..data'));
}

async function sidecarOf(port: number, uid: string): Promise<Sidecar> {
  const review = admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), { uid });
  const body = join(dir, `review-${uid}.json`);
  await writeFile(body, JSON.stringify(review));
  const r = await run('curl', ['-sS', '--cacert', join(dir, 'webhook-ca.pem'), '--resolve', `${INJECTOR_HOST}:${port}:127.0.0.1`, '-H', 'content-type: application/json', '--data-binary', `@${body}`, `https://${INJECTOR_HOST}:${port}/inject`]);
  expect(r.code).toBe(0);
  const answer = JSON.parse(r.stdout) as { response: { allowed: boolean; patch: string } };
  expect(answer.response.allowed).toBe(true);
  const ops = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
  const pod = applyJsonPatch((review.request as { object: object }).object, ops) as unknown as { spec: { initContainers: Sidecar[] } };
  return pod.spec.initContainers[0]!;
}

/** The log lines (JSON) with this msg prefix. */
const lines = (stderr: string, prefix: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { msg: string })
    .filter((l) => l.msg.startsWith(prefix));

test('a ConfigMap `..data` swap reaches the next admission; a bad file keeps the settings; listen needs a restart', async () => {
  await mkdir(cfgDir());
  await swapIn(yaml());
  await symlink(join('..data', 'injector.yaml'), join(cfgDir(), 'injector.yaml'));
  const proc = await startReadyProcess(['injector', '--config', join(cfgDir(), 'injector.yaml')], 'tessera injector: ready');
  stops.push(() => proc.stop(5_000));
  const port = Number(/tessera injector: listening \S+:(\d+)/.exec(proc.stdout())![1]);
  expect((await sidecarOf(port, '44444444-0000-4000-8000-000000000001')).image).toBe('registry.example/tessera:0.1.0');

  // The edit a sidecar-only release makes: a new image and new sidecar resources.
  await swapIn(yaml({ proxyImage: 'registry.example/tessera:0.2.0', resources: '{ requests: { memory: 200Mi } }' }));
  await until('the config to be reloaded', () => lines(proc.stderr(), 'injector: config reloaded').length === 1, 10_000, 25);
  const reloaded = lines(proc.stderr(), 'injector: config reloaded')[0]!;
  expect(reloaded['changed']).toEqual(['proxyImage', 'resources.requests.memory']);
  const second = await sidecarOf(port, '44444444-0000-4000-8000-000000000002');
  expect(second.image).toBe('registry.example/tessera:0.2.0');
  expect(second.resources.requests.memory).toBe('200Mi');

  // A file that does not validate: nothing of it applies (not even its valid proxyImage); a coded warning.
  await swapIn(yaml({ proxyImage: 'registry.example/tessera:0.3.0', resources: '{ requests: { memory: lots } }' }));
  await until('the bad file to be refused', () => lines(proc.stderr(), 'injector: config file not reloaded').length === 1, 10_000, 25);
  const refused = JSON.stringify(lines(proc.stderr(), 'injector: config file not reloaded')[0]);
  expect(refused).toContain('TESSERA_ERR_CONFIG_INVALID');
  expect(refused).toContain('injector.yaml:8');
  expect(refused).toContain('resources.requests.memory');
  const third = await sidecarOf(port, '44444444-0000-4000-8000-000000000003');
  expect(third.image).toBe('registry.example/tessera:0.2.0');
  expect(third.resources.requests.memory).toBe('200Mi');

  // Values that parse but that the API server would refuse in every pod (audit 32a F4): refused the same way.
  await swapIn(yaml({ proxyImage: 'registry.example/tessera:0.3.0', resources: '{ requests: { memory: 512Mi }, limits: { memory: 1Mi } }' }));
  await until('the limit below its request to be refused', () => lines(proc.stderr(), 'injector: config file not reloaded').length === 2, 10_000, 25);
  expect(JSON.stringify(lines(proc.stderr(), 'injector: config file not reloaded')[1])).toContain('resources.limits.memory: the memory limit 1Mi is below its request 512Mi');
  await swapIn(yaml({ proxyImage: 'registry.example/tessera:0.3.0', podBindAddress: '"999.1.1.1"' }));
  await until('the podBindAddress to be refused', () => lines(proc.stderr(), 'injector: config file not reloaded').length === 3, 10_000, 25);
  expect(JSON.stringify(lines(proc.stderr(), 'injector: config file not reloaded')[2])).toContain('podBindAddress');
  expect((await sidecarOf(port, '44444444-0000-4000-8000-000000000013')).image).toBe('registry.example/tessera:0.2.0');

  // listen cannot change while running: kept (still served on the old port) and named with the restart command;
  // the image in the same edit applies.
  await swapIn(yaml({ listen: '127.0.0.1:28901', proxyImage: 'registry.example/tessera:0.4.0' }));
  await until('the listen change to be reported', () => lines(proc.stderr(), 'injector: listen changed').length === 1, 10_000, 25);
  const restart = lines(proc.stderr(), 'injector: listen changed')[0]!;
  expect(restart['keys']).toEqual(['listen']);
  expect(restart.msg).toContain('kubectl -n tessera-system rollout restart deployment/tessera-injector');
  await until('the image of that edit to apply', () => lines(proc.stderr(), 'injector: config reloaded').length === 2, 10_000, 25);
  expect((await sidecarOf(port, '44444444-0000-4000-8000-000000000004')).image).toBe('registry.example/tessera:0.4.0');

  // logLevel is live: at warn, admissions are no longer logged.
  await swapIn(yaml({ listen: '127.0.0.1:28901', proxyImage: 'registry.example/tessera:0.4.0', logLevel: 'warn' }));
  await until('the listen change to be reported again', () => lines(proc.stderr(), 'injector: listen changed').length === 2, 10_000, 25);
  const admissions = lines(proc.stderr(), 'injector: admission').length;
  await sidecarOf(port, '44444444-0000-4000-8000-000000000005');
  expect(lines(proc.stderr(), 'injector: admission').length).toBe(admissions);
  expect(await proc.stop(5_000)).toBe(0);
}, 60_000);

/** One AdmissionReview over node:https: the injected sidecar's image and the pod's bootstrap bundle annotation. */
function admitOnce(port: number, caPem: string, uid: string): Promise<{ image: string; bundle: string }> {
  const review = admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), { uid });
  const body = JSON.stringify(review);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: INJECTOR_HOST, ca: caPem, path: '/inject', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { response: { allowed: boolean; patch: string } };
          if (!answer.response.allowed) throw new Error(`denied: ${JSON.stringify(answer.response).slice(0, 300)}`);
          const ops = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
          const pod = applyJsonPatch((review.request as { object: object }).object, ops) as unknown as { metadata: { annotations: Record<string, string> }; spec: { initContainers: Sidecar[] } };
          resolve({ image: pod.spec.initContainers[0]!.image, bundle: pod.metadata.annotations[ANNOTATION.bootstrapBundle] ?? '' });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('during a burst of ConfigMap swaps every admission gets the bundle and the image of one version', async () => {
  const burst = join(dir, 'burst');
  await mkdir(burst);
  // Two versions: {bundle A, image :a} and {bundle B, image :b}. Large bundles widen the bundle file's async read,
  // the window in which a reload used to land between an admission's bundle and its settings.
  const pemA = (await TestCa.create({ trustDomain: 'a.local' })).bundlePem();
  const pemB = (await TestCa.create({ trustDomain: 'b.local' })).bundlePem();
  await writeFile(join(burst, 'bundle-a.pem'), pemA.repeat(100));
  await writeFile(join(burst, 'bundle-b.pem'), pemB.repeat(100));
  const A = yaml({ bundleFile: join(burst, 'bundle-a.pem'), proxyImage: 'registry.example/tessera:a' });
  const B = yaml({ bundleFile: join(burst, 'bundle-b.pem'), proxyImage: 'registry.example/tessera:b' });
  await swapIn(A, burst);
  await symlink(join('..data', 'injector.yaml'), join(burst, 'injector.yaml'));
  const proc = await startReadyProcess(['injector', '--config', join(burst, 'injector.yaml')], 'tessera injector: ready');
  stops.push(() => proc.stop(5_000));
  const port = Number(/tessera injector: listening \S+:(\d+)/.exec(proc.stdout())![1]);
  const caPem = await readFile(join(dir, 'webhook-ca.pem'), 'utf8');
  const versionOf = (r: { image: string; bundle: string }) => {
    const bundle = r.bundle.includes(pemA.slice(40, 240)) ? 'A' : r.bundle.includes(pemB.slice(40, 240)) ? 'B' : '?';
    return `${r.image.split(':').pop()}|${bundle}`;
  };
  expect(versionOf(await admitOnce(port, caPem, '55555555-0000-4000-8000-000000000000'))).toBe('a|A');

  const seen = new Map<string, number>();
  let swapping = true;
  let uid = 0;
  const swaps = (async () => {
    // Each swap waits for its reload, so that all 16 are reloads that admissions run into.
    for (let i = 1; i <= 16; i++) {
      await swapIn(i % 2 ? B : A, burst);
      await until(`reload ${i}`, () => lines(proc.stderr(), 'injector: config reloaded').length === i, 10_000, 2);
    }
    swapping = false;
  })();
  const workers = Array.from({ length: 6 }, async () => {
    while (swapping) {
      const r = await admitOnce(port, caPem, `55555555-0000-4000-8000-${String(++uid).padStart(12, '0')}`);
      seen.set(versionOf(r), (seen.get(versionOf(r)) ?? 0) + 1);
    }
  });
  await Promise.all([swaps, ...workers]);
  const combos = Object.fromEntries(seen);
  // Both versions were served during the burst, and never half of each.
  expect(Object.keys(combos).sort(), JSON.stringify(combos)).toEqual(['a|A', 'b|B']);
  expect(await proc.stop(5_000)).toBe(0);
}, 60_000);
