// The injection webhook over real HTTPS: AdmissionReview files written here are POSTed by curl (verifying the
// serving certificate's DNS name, as the API server does), the returned JSON Patch is applied by an independent
// applier, and the mutated pod is checked; then malformed requests, TLS floor, certificate swap, and the CLI.
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type InjectorWebhook, MAX_REVIEW_BYTES, startInjectorWebhook } from '../../control-plane/src/injector/webhook-server.js';
import { applyJsonPatch } from '../helpers/json-patch.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { validateK8sObject } from '../unit/deploy/k8s-schema.js';
import { INJECTOR_HOST, type ServingPki, TEST_CONFIG, admissionReview, appPod, servingPki, testBundlePem } from '../helpers/injector-fixtures.js';
import { systemClock } from '../../common/clock.js';

interface Review {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    status?: { code: number; message: string };
    warnings?: string[];
  };
}
interface Container {
  name: string;
  restartPolicy?: string;
  startupProbe?: { httpGet: { path: string; port: number } };
  readinessProbe?: { httpGet: { path: string; port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface MutatedPod {
  metadata: { annotations: Record<string, string> };
  spec: { initContainers: Container[]; containers: Container[]; volumes: { name: string; projected?: { sources: { serviceAccountToken: object }[] } }[] };
}

let pki: ServingPki;
let webhook: InjectorWebhook;
let dir: string;
let cleanup: () => Promise<void>;
let bundleFails = false;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  pki = await servingPki();
  await writeFile(join(dir, 'ca.pem'), pki.caPem);
  const bundle = await testBundlePem();
  webhook = await startInjectorWebhook({
    listen: '127.0.0.1:0',
    preciseClock: systemClock,
    certPem: pki.certPem,
    keyPem: pki.keyPem,
    snapshot: () => ({
      config: TEST_CONFIG,
      bundlePem: () => {
        if (bundleFails) throw new Error('bundle.pem: ENOENT');
        return bundle;
      },
    }),
  });
});

afterAll(async () => {
  await webhook?.close();
  await cleanup?.();
});

/** POST a file with curl, verifying the certificate for the Service DNS name. */
async function curlPost(file: string, opts: { contentType?: string; path?: string; caFile?: string } = {}): Promise<{ status: number; body: string }> {
  const url = `https://${INJECTOR_HOST}:${webhook.port}${opts.path ?? '/inject?timeout=5s'}`;
  const r = await run('curl', [
    '-sS',
    '--cacert',
    opts.caFile ?? join(dir, 'ca.pem'),
    '--resolve',
    `${INJECTOR_HOST}:${webhook.port}:127.0.0.1`,
    '-H',
    `content-type: ${opts.contentType ?? 'application/json'}`,
    '--data-binary',
    `@${file}`,
    '-w',
    '\n%{http_code}',
    url,
  ]);
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

async function review(name: string, reviewDoc: unknown): Promise<Review> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(reviewDoc, null, 2));
  const { status, body } = await curlPost(file);
  expect(status).toBe(200);
  return JSON.parse(body) as Review;
}

/** Node HTTPS client for requests curl makes awkward (methods, huge bodies, raw garbage). */
function nodeRequest(opts: { method?: string; path?: string; body?: Buffer | string; headers?: Record<string, string> }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: webhook.port,
        servername: INJECTOR_HOST,
        ca: pki.caPem,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/inject',
        headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('injection webhook over HTTPS', () => {
  test('a pod CREATE gets a JSON Patch that yields the sidecar once, its probes, volumes and config', async () => {
    const pod = appPod({
      annotations: {
        'tessera.dev/inbound-ports': '8080',
        'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/default/sa/api@api.default.svc:15006',
      },
    });
    const reviewDoc = admissionReview(pod, { uid: 'aa3f7d1c-0001-4c3e-9a55-000000000001' });
    const res = await review('create', reviewDoc);
    expect(res.apiVersion).toBe('admission.k8s.io/v1');
    expect(res.kind).toBe('AdmissionReview');
    expect(res.response.uid).toBe('aa3f7d1c-0001-4c3e-9a55-000000000001');
    expect(res.response.allowed).toBe(true);
    expect(res.response.patchType).toBe('JSONPatch');
    const ops = JSON.parse(Buffer.from(res.response.patch!, 'base64').toString('utf8'));
    const sent = (reviewDoc.request as { object: object }).object;
    const mutated = applyJsonPatch(sent, ops) as unknown as MutatedPod;

    const sidecars = [...mutated.spec.initContainers, ...mutated.spec.containers].filter((c) => c.name === 'tessera-proxy');
    expect(sidecars).toHaveLength(1);
    expect(mutated.spec.initContainers[0]!.name).toBe('tessera-proxy');
    expect(sidecars[0]!.restartPolicy).toBe('Always');
    expect(sidecars[0]!.startupProbe!.httpGet).toMatchObject({ path: '/ready', port: 15000 });
    expect(sidecars[0]!.readinessProbe!.httpGet).toMatchObject({ path: '/ready', port: 15000 });
    const token = mutated.spec.volumes.find((v) => v.name === 'tessera-token');
    expect(token!.projected!.sources[0]!.serviceAccountToken).toEqual({ audience: 'tessera', expirationSeconds: 3600, path: 'token' });
    expect(mutated.spec.volumes.map((v) => v.name)).toEqual(expect.arrayContaining(['tessera-config', 'tessera-workload-api', 'tessera-tmp']));
    const config = parseYaml(mutated.metadata.annotations['tessera.dev/proxy-config']!);
    expect(config.identity.controlPlane.kubernetesTokenFile).toBe('/var/run/secrets/tessera/token');
    expect(config.identity.controlPlane.stateDir).toBe('/tmp/tessera-state');
    expect(config.inbound).toEqual([{ name: 'app-8080', listen: '0.0.0.0:15006', forwardTo: '127.0.0.1:8080', protocol: 'http' }]);
    expect(config.outbound[0]).toMatchObject({ name: 'api', upstream: 'api.default.svc:15006', spiffeId: 'spiffe://cluster.local/ns/default/sa/api' });
    expect(mutated.metadata.annotations['tessera.dev/bootstrap-bundle']).toBe(await testBundlePem());
    expect(validateK8sObject(mutated).errors).toEqual([]);

    // Reinvocation (reinvocationPolicy: IfNeeded) and re-submission: the injected pod is left alone.
    const again = await review('reinvoke', admissionReview(mutated as unknown as Record<string, unknown>, { uid: 'aa3f7d1c-0002-4c3e-9a55-000000000002' }));
    expect(again.response).toEqual({ uid: 'aa3f7d1c-0002-4c3e-9a55-000000000002', allowed: true });
  });

  test('tessera.dev/http-proxy: the patch adds the forward-proxy listener and HTTP_PROXY/NO_PROXY to the app container', async () => {
    const reviewDoc = admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080', 'tessera.dev/http-proxy': 'true' } }), { uid: 'aa3f7d1c-0003-4c3e-9a55-000000000003' });
    const res = await review('http-proxy', reviewDoc);
    expect(res.response.allowed).toBe(true);
    const ops = JSON.parse(Buffer.from(res.response.patch!, 'base64').toString('utf8'));
    const mutated = applyJsonPatch((reviewDoc.request as { object: object }).object, ops) as unknown as MutatedPod & { spec: { containers: { env?: { name: string; value?: string }[] }[] } };
    const config = parseYaml(mutated.metadata.annotations['tessera.dev/proxy-config']!);
    expect(config.outbound).toEqual([{ name: 'mesh', listen: '127.0.0.1:15080', mode: 'http-proxy' }]);
    const env = Object.fromEntries((mutated.spec.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ HTTP_PROXY: 'http://127.0.0.1:15080', http_proxy: 'http://127.0.0.1:15080', MODE: 'prod' });
    expect(env['NO_PROXY']).toBe(env['no_proxy']);
    expect(env['NO_PROXY']!.split(',')).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '::1']));
    expect(validateK8sObject(mutated).errors).toEqual([]);
  });

  test('opt-out, hostNetwork, Windows and mirror pods (warning) and non-pod operations are allowed without a patch', async () => {
    const optOut = await review('optout', admissionReview(appPod({ annotations: { 'tessera.dev/inject': 'false' } })));
    expect(optOut.response.allowed).toBe(true);
    expect(optOut.response.patch).toBeUndefined();
    const hn = appPod();
    (hn.spec as Record<string, unknown>).hostNetwork = true;
    const host = await review('hostnet', admissionReview(hn));
    expect(host.response.patch).toBeUndefined();
    expect(host.response.warnings?.[0]).toContain('hostNetwork');
    const win = appPod();
    Object.assign(win.spec as Record<string, unknown>, { os: { name: 'windows' }, nodeSelector: { 'kubernetes.io/os': 'windows' } });
    const windows = await review('windows', admissionReview(win));
    expect(windows.response.allowed).toBe(true);
    expect(windows.response.patch).toBeUndefined();
    expect(windows.response.warnings?.[0]).toContain('runs on Windows');
    // A static pod's mirror, as the kubelet creates it (audit 38b, F3): the API server would refuse it injected.
    const mirrorPod = appPod({ annotations: { 'kubernetes.io/config.mirror': 'abc123', 'kubernetes.io/config.source': 'file' } });
    (mirrorPod.metadata as Record<string, unknown>).ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'n1', controller: true }];
    const mirror = await review('mirror', admissionReview(mirrorPod));
    expect(mirror.response.allowed).toBe(true);
    expect(mirror.response.patch).toBeUndefined();
    expect(mirror.response.warnings?.[0]).toContain('is a static pod or its mirror (annotation kubernetes.io/config.mirror) and was not injected');
    const update = await review('update', admissionReview(appPod(), { operation: 'UPDATE' }));
    expect(update.response).toMatchObject({ allowed: true });
    expect(update.response.patch).toBeUndefined();
  });

  test('a malformed annotation is denied with a message naming it; a conflict is denied 409', async () => {
    const bad = await review('bad', admissionReview(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080,http' } }), { uid: 'bad-1' }));
    expect(bad.response.uid).toBe('bad-1');
    expect(bad.response.allowed).toBe(false);
    expect(bad.response.status?.code).toBe(400);
    expect(bad.response.status?.message).toContain('tessera.dev/inbound-ports');
    // Audit 38b, F5: an outbound local port the app container declares (appPod's "web" declares 8080).
    const local = await review('local-port', admissionReview(appPod({ annotations: { 'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/a/sa/api@api.a.svc:15006;local=8080' } })));
    expect(local.response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(local.response.status?.message).toBe('tessera: annotation tessera.dev/outbound: upstream "api": local port 8080 is already used by container "web", which declares it (containerPort 8080)');
    const clash = appPod();
    ((clash.spec as { volumes: object[] }).volumes).push({ name: 'tessera-tmp', emptyDir: {} });
    const conflict = await review('conflict', admissionReview(clash));
    expect(conflict.response).toMatchObject({ allowed: false, status: { code: 409 } });
  });

  test('a review whose object is not a pod is denied, not crashed on', async () => {
    const doc = admissionReview(appPod(), { uid: 'np-1' });
    (doc.request as Record<string, unknown>).object = { spec: { containers: 'nope' } };
    const res = await review('notapod', doc);
    expect(res.response).toMatchObject({ uid: 'np-1', allowed: false, status: { code: 400 } });
  });

  test('when the trust bundle cannot be read the pod is denied (fail closed)', async () => {
    bundleFails = true;
    try {
      const res = await review('nobundle', admissionReview(appPod()));
      expect(res.response).toMatchObject({ allowed: false, status: { code: 500 } });
      expect(res.response.status?.message).not.toContain('ENOENT');
    } finally {
      bundleFails = false;
    }
  });

  test('a pod of more than 1 MiB is injected, and its injected form reviewed again (reinvocation) is answered too', async () => {
    // 1.2 MiB of environment: Kubernetes stores objects of up to 1.5 MiB, and the JSON of a review is larger still.
    const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as { spec: { containers: { env: { name: string; value: string }[] }[] } };
    pod.spec.containers[0]!.env.push(...Array.from({ length: 12 }, (_, i) => ({ name: `BLOB_${i}`, value: 'x'.repeat(100 * 1024) })));
    const first = admissionReview(pod, { uid: 'aa3f7d1c-0001-4c3e-9a55-00000000b16a' });
    expect(JSON.stringify(first).length).toBeGreaterThan(1.1 * 2 ** 20);
    const res = await review('big-create', first);
    expect(res.response.allowed).toBe(true);
    const injected = applyJsonPatch((first.request as { object: object }).object, JSON.parse(Buffer.from(res.response.patch!, 'base64').toString('utf8'))) as unknown as MutatedPod;
    expect([...injected.spec.initContainers, ...injected.spec.containers].filter((c) => c.name === 'tessera-proxy')).toHaveLength(1);
    const again = await review('big-reinvocation', admissionReview(injected as unknown as Record<string, unknown>, { uid: 'aa3f7d1c-0001-4c3e-9a55-00000000b16b' }));
    expect(again.response).toMatchObject({ uid: 'aa3f7d1c-0001-4c3e-9a55-00000000b16b', allowed: true });
    // Nothing to add the second time: the sidecar is not added twice.
    const ops = again.response.patch ? JSON.parse(Buffer.from(again.response.patch, 'base64').toString('utf8')) : [];
    const twice = applyJsonPatch(injected, ops) as unknown as MutatedPod;
    expect([...twice.spec.initContainers, ...twice.spec.containers].filter((c) => c.name === 'tessera-proxy')).toHaveLength(1);
  });

  test('HTTP misuse: wrong path, method, content type, non-JSON, non-UTF-8, non-review, oversized body', async () => {
    const file = join(dir, 'plain.json');
    await writeFile(file, JSON.stringify(admissionReview(appPod())));
    expect((await curlPost(file, { path: '/mutate' })).status).toBe(404);
    // Each refusal of the request names its code first (audit 38b, F4: they had none).
    // 400, the status errors.md gives INJECT_BAD_REVIEW for each of its causes (audit 51a F4: it was 415).
    for (const contentType of ['text/plain', 'application/jsonx', 'application/x-www-form-urlencoded']) {
      expect(await curlPost(file, { contentType }), contentType).toEqual({ status: 400, body: 'TESSERA_ERR_INJECT_BAD_REVIEW: content-type must be application/json\n' });
    }
    expect((await nodeRequest({ method: 'GET' })).status).toBe(405);
    expect(await nodeRequest({ body: '{"apiVersion": "admission.k8s.io/v1", "kind": ' })).toEqual({ status: 400, body: 'TESSERA_ERR_INJECT_BAD_REVIEW: body is not JSON\n' });
    const v1beta1 = await nodeRequest({ body: JSON.stringify({ ...admissionReview(appPod()), apiVersion: 'admission.k8s.io/v1beta1' }) });
    expect(v1beta1.status).toBe(400);
    expect(v1beta1.body).toMatch(/^TESSERA_ERR_INJECT_BAD_REVIEW: expected apiVersion admission\.k8s\.io\/v1/);
    const noUid = admissionReview(appPod());
    delete (noUid.request as Record<string, unknown>).uid;
    expect(await nodeRequest({ body: JSON.stringify(noUid) })).toEqual({ status: 400, body: 'TESSERA_ERR_INJECT_BAD_REVIEW: request.uid is missing or malformed\n' });
    // JSON is UTF-8: a Latin-1 byte in a value was read as U+FFFD; now the body is refused.
    const latin1 = Buffer.from(JSON.stringify(admissionReview(appPod({ annotations: { x: 'caf\u00e9' } }))), 'latin1');
    expect(await nodeRequest({ body: latin1 })).toEqual({ status: 400, body: 'TESSERA_ERR_INJECT_BAD_REVIEW: body is not UTF-8\n' });
    const big = Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20);
    const tooBig = await nodeRequest({ body: big }).catch(() => ({ status: -1, body: '' }));
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toBe(`TESSERA_ERR_INJECT_TOO_LARGE: body larger than ${MAX_REVIEW_BYTES} bytes\n`);
    // Chunked (no content-length) oversized body: cut off while streaming.
    const chunked = await new Promise<number>((resolve) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: webhook.port, servername: INJECTOR_HOST, ca: pki.caPem, method: 'POST', path: '/inject', headers: { 'content-type': 'application/json' }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(-1));
      for (let i = 0; i <= MAX_REVIEW_BYTES / (64 * 1024); i++) req.write(Buffer.alloc(64 * 1024, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await nodeRequest({ method: 'GET', path: '/healthz' })).status).toBe(200);
  });

  test('TLS below 1.2 is refused; a swapped certificate serves new handshakes', async () => {
    const old = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: webhook.port, servername: INJECTOR_HOST, ca: pki.caPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
      s.on('secureConnect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e) => resolve(e.message));
    });
    expect(old).not.toBe('connected');

    const next = await servingPki(undefined, 'Tessera Test Webhook CA 2');
    await writeFile(join(dir, 'ca2.pem'), next.caPem);
    const file = join(dir, 'swap.json');
    await writeFile(file, JSON.stringify(admissionReview(appPod())));
    webhook.updateCertificate(next.certPem, next.keyPem);
    try {
      expect((await curlPost(file, { caFile: join(dir, 'ca2.pem') })).status).toBe(200);
      await expect(curlPost(file)).rejects.toThrow(/curl failed/);
    } finally {
      webhook.updateCertificate(pki.certPem, pki.keyPem);
    }
    expect((await curlPost(file)).status).toBe(200);
  });
});

describe('tessera inject (built CLI) does what the webhook does', () => {
  test('same pod as the webhook patch; workloads get their template injected; bad annotations exit 1', async () => {
    const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } });
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: pod.spec } },
    };
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 15006 }] } };
    await writeFile(join(dir, 'bundle.pem'), await testBundlePem());
    await writeFile(join(dir, 'app.yaml'), [pod, deployment, service].map((d) => stringify(d)).join('---\n'));
    const r = await tessera(['inject', '-f', join(dir, 'app.yaml'), '--bundle', join(dir, 'bundle.pem'), '--image', TEST_CONFIG.proxyImage]);
    expect(r.stderr).toContain('document 1 Pod web-7d9f8: injected');
    expect(r.code).toBe(0);
    const [cliPod, cliDeploy, cliService] = parseAllDocuments(r.stdout).map((d) => d.toJS());
    const version = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

    const res = await review('cli-compare', admissionReview(pod, { namespace: 'shop' }));
    const sent = { ...pod, metadata: { ...(pod.metadata as object), namespace: 'shop' } };
    const viaWebhook = applyJsonPatch(sent, JSON.parse(Buffer.from(res.response.patch!, 'base64').toString()));
    // The CLI stamps the package version; the webhook here was configured with TEST_CONFIG's.
    (viaWebhook as unknown as MutatedPod).metadata.annotations['tessera.dev/injected'] = version;
    expect(cliPod).toEqual(viaWebhook);
    expect(cliDeploy.spec.template.spec.initContainers[0].name).toBe('tessera-proxy');
    expect(cliService).toEqual(service);
    for (const o of [cliPod, cliDeploy]) expect(validateK8sObject(o).errors).toEqual([]);

    // Idempotent offline too: injecting the output again changes nothing. This case and the usage error run in-process
    // (runCli, what the binary wires its I/O into); the first injection and the bad annotation through the binary.
    await writeFile(join(dir, 'out.yaml'), r.stdout);
    const twice = await tesseraInProcess(['inject', '-f', join(dir, 'out.yaml'), '--bundle', join(dir, 'bundle.pem'), '--image', TEST_CONFIG.proxyImage]);
    expect(parseAllDocuments(twice.stdout).map((d) => d.toJS())).toEqual([cliPod, cliDeploy, cliService]);
    expect(twice.stderr).toContain('skipped: already-injected');

    await writeFile(join(dir, 'bad.yaml'), stringify(appPod({ annotations: { 'tessera.dev/outbound': 'api@x' } })));
    const bad = await tessera(['inject', '-f', join(dir, 'bad.yaml'), '--bundle', join(dir, 'bundle.pem')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(bad.stderr).toContain('tessera.dev/outbound');
    expect((await tesseraInProcess(['inject', '--bundle', join(dir, 'bundle.pem')])).code).toBe(2);
  });
});
