// `tessera injector` as its own process, its config file laid out as the kubelet lays out a ConfigMap volume
// (injector.yaml -> ..data/injector.yaml, ..data -> ..<timestamp>) and edited by a `..data` symlink swap (audit 31b
// N1): the next AdmissionReview gets the new proxyImage and resources, a file that does not validate keeps the
// previous settings (a coded warning names file, line and key), and a `listen` change is kept and logged as needing a restart.
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
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
async function swapIn(text: string): Promise<void> {
  generation += 1;
  const stamp = `..2026_01_01_00_00_${String(generation).padStart(2, '0')}.${generation}`;
  await mkdir(join(cfgDir(), stamp));
  await writeFile(join(cfgDir(), stamp, 'injector.yaml'), text);
  await symlink(stamp, join(cfgDir(), '..data_tmp'));
  await rename(join(cfgDir(), '..data_tmp'), join(cfgDir(), '..data'));
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
