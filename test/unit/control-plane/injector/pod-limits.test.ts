// What one review may make the injector do (audit 4, B1, A4, C1): pods beyond the container bound and pods whose
// annotations would pass Kubernetes' 256 KiB limit are denied TESSERA_ERR_INJECT_TOO_LARGE naming the limit, without
// a patch; a malformed element anywhere injection reads is a 400 naming the field, never a 500; nothing of the
// request's nesting is copied (a probe nested 100 000 deep was a 500 from a recursive copy).
import { describe, expect, test } from 'vitest';
import { errorMessage } from '../../../../common/errors.js';
import { MAX_ANNOTATION_BYTES, MAX_CONTAINERS, MAX_PATCH_BYTES } from '../../../../control-plane/src/injector/admission-limits.js';
import { type AdmissionOutcome, admitPod, readAdmissionReview } from '../../../../control-plane/src/injector/admission-review.js';
import { MAX_REVIEW_BYTES } from '../../../../control-plane/src/injector/webhook-server.js';
import { admissionReview, appPod, testContext } from '../../../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';

type AnyPod = { metadata: { annotations?: Record<string, string> }; spec: { containers: Record<string, unknown>[]; initContainers?: Record<string, unknown>[]; volumes?: unknown[] } };

async function admit(pod: unknown): Promise<AdmissionOutcome> {
  const review = admissionReview(appPod());
  return admitPod({ ...readAdmissionReview(review), object: pod }, await testContext());
}

function patched(pod: unknown, out: AdmissionOutcome): AnyPod {
  expect(out.decision, JSON.stringify(out.response.status)).toBe('injected');
  return applyJsonPatch(pod, JSON.parse(Buffer.from(out.response.patch!, 'base64').toString())) as AnyPod;
}

const withContainers = (n: number, init = 0, extra: (i: number) => Record<string, unknown> = () => ({})) => {
  const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as AnyPod;
  pod.spec.containers = Array.from({ length: n }, (_, i) => ({ name: `c${i}`, image: 'app:1', ...extra(i) }));
  pod.spec.initContainers = Array.from({ length: init }, (_, i) => ({ name: `i${i}`, image: 'init:1' }));
  return pod;
};

describe('the container bound', () => {
  test(`more than ${MAX_CONTAINERS} containers and init containers: denied 413 naming the bound, no patch`, async () => {
    for (const pod of [withContainers(MAX_CONTAINERS + 1), withContainers(200, MAX_CONTAINERS - 199), withContainers(45_000)]) {
      const out = await admit(pod);
      expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_TOO_LARGE', response: { allowed: false, status: { code: 413, reason: 'RequestEntityTooLarge' } } });
      expect(out.response.status!.message).toContain(`at most ${MAX_CONTAINERS}`);
      expect(out.response.patch).toBeUndefined();
    }
  });

  test(`the bound is on the pod's own containers: ${MAX_CONTAINERS} injected are allowed again, and so is one added later up to the bound (audit 17b, F3)`, async () => {
    // What the API server sends again (reinvocationPolicy: IfNeeded) after a later webhook changed the pod.
    const laterWebhook = (pod: AnyPod, add?: Record<string, unknown>) => {
      const next = structuredClone(pod) as AnyPod & { metadata: { labels?: Record<string, string> } };
      next.metadata.labels = { ...next.metadata.labels, 'other-webhook': 'touched' };
      if (add) next.spec.containers.push(add);
      return next;
    };
    const full = withContainers(MAX_CONTAINERS);
    const injectedFull = patched(full, await admit(full));
    expect(injectedFull.spec.containers.length + injectedFull.spec.initContainers!.length).toBe(MAX_CONTAINERS + 1);
    const again = await admit(laterWebhook(injectedFull));
    expect(again, JSON.stringify(again.response.status)).toMatchObject({ decision: 'skipped', reason: 'already-injected', response: { allowed: true } });
    expect(again.response.patch).toBeUndefined();
    // One under the bound, and a later webhook adds the pod's 256th: it gets the socket like the others.
    const one = withContainers(MAX_CONTAINERS - 1);
    const grown = laterWebhook(patched(one, await admit(one)), { name: 'added', image: 'added:1' });
    const done = patched(grown, await admit(grown));
    expect((done.spec.containers.at(-1)!.volumeMounts as { name: string }[]).map((m) => m.name)).toContain('tessera-workload-api');
    // Beyond the bound it still holds, sidecar or not: 257 of the pod's own containers next to tessera-proxy.
    const over = laterWebhook(injectedFull, { name: 'one-too-many', image: 'x:1' });
    const denied = await admit(over);
    expect(denied).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_TOO_LARGE', response: { status: { code: 413 } } });
    expect(denied.response.status!.message).toContain(`at most ${MAX_CONTAINERS} besides its own tessera-proxy`);
    // A name alone is not a pass for more: a container called tessera-proxy among 257 regular ones is counted.
    const impostor = withContainers(MAX_CONTAINERS + 1);
    impostor.spec.containers[0]!.name = 'tessera-proxy';
    expect(await admit(impostor)).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_TOO_LARGE' });
  });

  test('64 containers with three rewritten probes each inject, well under the patch bound', async () => {
    const probe = (kind: string) => ({ httpGet: { path: `/${kind}`, port: 8080, httpHeaders: [{ name: 'X-Probe', value: 'k8s' }] }, periodSeconds: 5 });
    const pod = withContainers(63, 1, () => ({ livenessProbe: probe('live'), readinessProbe: probe('ready'), startupProbe: { tcpSocket: { port: 8080 } } }));
    const out = await admit(pod);
    const size = Buffer.from(out.response.patch!, 'base64').length;
    expect(size).toBeLessThan(MAX_PATCH_BYTES / 2);
    const after = patched(pod, out);
    expect(after.spec.containers.every((c) => (c.readinessProbe as { httpGet: { port: number } }).httpGet.port === 15000)).toBe(true);
  });
});

describe('the answer is bounded, not a multiple of the request (audit 5, N2)', () => {
  test(`a few KiB of containers with empty env lists: one op per list, not one per variable`, async () => {
    // The audit's shape: 256 containers {name, env: []} with the forward proxy gave 1,541 ops and 317 KiB for 7 KiB.
    const pod = withContainers(MAX_CONTAINERS, 0, () => ({ env: [], volumeMounts: [] }));
    pod.metadata.annotations = { 'tessera.dev/http-proxy': 'true' };
    const out = await admit(pod);
    const ops = JSON.parse(Buffer.from(out.response.patch!, 'base64').toString()) as { path: string }[];
    expect(ops.filter((o) => o.path.startsWith('/spec/containers/')).length).toBe(2 * MAX_CONTAINERS);
    const after = patched(pod, out);
    expect(after.spec.containers.every((c) => (c.env as { name: string }[]).some((e) => e.name === 'HTTP_PROXY'))).toBe(true);
  });

  test('a list with items of its own keeps them, and is extended in one op when that is shorter', async () => {
    const pod = withContainers(2, 0, () => ({ env: [{ name: 'A', value: '1' }] }));
    pod.metadata.annotations = { 'tessera.dev/http-proxy': 'true' };
    const after = patched(pod, await admit(pod));
    for (const c of after.spec.containers) expect((c.env as { name: string }[]).map((e) => e.name)).toEqual(expect.arrayContaining(['A', 'HTTP_PROXY', 'SPIFFE_ENDPOINT_SOCKET']));
    expect((after.spec.containers[0]!.env as { name: string }[])[0]!.name).toBe('A');
  });

  test(`${MAX_CONTAINERS} containers with three probes each (655 KiB of patch before): denied 413 naming the bound`, async () => {
    const probe = (kind: string) => ({ httpGet: { path: `/${kind}`, port: 8080, httpHeaders: [{ name: 'X-Probe', value: 'k8s' }] }, periodSeconds: 5 });
    const pod = withContainers(MAX_CONTAINERS - 1, 1, () => ({ livenessProbe: probe('live'), readinessProbe: probe('ready'), startupProbe: { tcpSocket: { port: 8080 } } }));
    const out = await admit(pod);
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_TOO_LARGE', response: { allowed: false, status: { code: 413 } } });
    expect(out.response.status!.message).toMatch(/the injector returns at most \d+ \(262144 and the trust bundle\)/);
  });
  // The catalogue (and docs/errors.md, which must say the same) said "a patch over 1 MiB" after the bound became
  // 256 KiB plus the bundle (audit 38b, F7): each bound the code enforces is the one it names.
  test('the error catalogue names the bounds the code enforces', () => {
    const meaning = errorMessage('TESSERA_ERR_INJECT_TOO_LARGE');
    expect(meaning).toContain(`more than ${MAX_CONTAINERS} containers`);
    expect(meaning).toContain(`annotations over the ${MAX_ANNOTATION_BYTES / 1024} KiB Kubernetes limit`);
    expect(meaning).toContain(`a patch over ${MAX_PATCH_BYTES / 1024} KiB plus the size of the trust bundle`);
    expect(meaning).toContain(`a review body over ${MAX_REVIEW_BYTES / 2 ** 20} MiB`);
    expect(meaning).not.toMatch(/patch over \d+ MiB/);
  });
});

describe('the annotation limit (Kubernetes: 262144 bytes of keys and values)', () => {
  const withAnnotation = (bytes: number) => appPod({ annotations: { 'example.com/big': 'x'.repeat(bytes) } });

  test('injected annotations that would pass the limit: denied 413 naming the sizes, not left to the API server', async () => {
    const out = await admit(withAnnotation(255 * 1024));
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_TOO_LARGE', response: { status: { code: 413 } } });
    expect(out.response.status!.message).toMatch(new RegExp(`would be \\d+ bytes, over the Kubernetes limit of ${MAX_ANNOTATION_BYTES}`));
  });

  test('below it the pod is injected and the result is within the limit', async () => {
    const pod = withAnnotation(250 * 1024);
    const after = patched(pod, await admit(pod));
    const total = Object.entries(after.metadata.annotations ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(total).toBeLessThanOrEqual(MAX_ANNOTATION_BYTES);
  });
});

describe('malformed shapes are 400 naming the field, never 500', () => {
  const mutate = (f: (pod: AnyPod) => void) => {
    const pod = appPod() as AnyPod;
    f(pod);
    return pod;
  };
  const c0 = (pod: AnyPod) => pod.spec.containers[0]!;
  test.each([
    ['ports [null]', (p: AnyPod) => (c0(p).ports = [null]), 'spec.containers[0].ports[0] is not an object'],
    ['ports [{}]', (p: AnyPod) => (c0(p).ports = [{}]), 'spec.containers[0].ports[0].containerPort'],
    ['containerPort "15006" (a string)', (p: AnyPod) => (c0(p).ports = [{ containerPort: '15006' }]), 'spec.containers[0].ports[0].containerPort'],
    ['volumeMounts [null]', (p: AnyPod) => (c0(p).volumeMounts = [null]), 'spec.containers[0].volumeMounts[0] is not an object'],
    ['volumeMounts [{}]', (p: AnyPod) => (c0(p).volumeMounts = [{ name: 'data' }]), 'spec.containers[0].volumeMounts[0].mountPath'],
    ['env [null]', (p: AnyPod) => (c0(p).env = [null]), 'spec.containers[0].env[0] is not an object'],
    ['env entry without name', (p: AnyPod) => (c0(p).env = [{ value: 'x' }]), 'spec.containers[0].env[0].name'],
    ['volumes [null]', (p: AnyPod) => (p.spec.volumes = [null]), 'spec.volumes[0] is not an object'],
    ['initContainers [null]', (p: AnyPod) => (p.spec.initContainers = [null as unknown as Record<string, unknown>]), 'spec.initContainers[0] is not an object'],
    ['labels not strings', (p: AnyPod) => Object.assign(p.metadata, { labels: { a: 1 } }), 'metadata.labels'],
    ['a probe that is not an object', (p: AnyPod) => (c0(p).readinessProbe = 'yes'), 'spec.containers[0].readinessProbe is not an object'],
    ['httpGet port an object', (p: AnyPod) => (c0(p).livenessProbe = { httpGet: { port: { a: 1 } } }), 'spec.containers[0].livenessProbe.httpGet.port'],
    ['httpHeaders not a list', (p: AnyPod) => (c0(p).livenessProbe = { httpGet: { port: 8080, httpHeaders: {} } }), 'spec.containers[0].livenessProbe.httpGet.httpHeaders is not a list'],
    // Audit 59c F1: a token Kubernetes would not take ("__proto__") reached the sidecar's config, which refused it.
    ['a header name "__proto__"', (p: AnyPod) => (c0(p).livenessProbe = { httpGet: { port: 8080, httpHeaders: [{ name: '__proto__', value: 'x' }] } }), 'httpHeaders[0].name is not an HTTP header name'],
    ['a header name with "_"', (p: AnyPod) => (c0(p).readinessProbe = { httpGet: { port: 8080, httpHeaders: [{ name: 'x_b', value: 'x' }] } }), 'httpHeaders[0].name is not an HTTP header name'],
    ['a header value with CR LF', (p: AnyPod) => (c0(p).livenessProbe = { httpGet: { port: 8080, httpHeaders: [{ name: 'X', value: 'a\r\nb' }] } }), 'httpHeaders[0].value'],
    ['two handlers', (p: AnyPod) => (c0(p).startupProbe = { httpGet: { port: 8080 }, exec: { command: ['true'] } }), 'startupProbe has more than one handler'],
    ['a timing field nested', (p: AnyPod) => (c0(p).livenessProbe = { tcpSocket: { port: 8080 }, periodSeconds: nested(10_000) }), 'livenessProbe.periodSeconds is not an integer'],
    ['a fractional timeout', (p: AnyPod) => (c0(p).readinessProbe = { tcpSocket: { port: 8080 }, timeoutSeconds: 0.05 }), 'readinessProbe.timeoutSeconds is not an integer'],
    ['a container name that is no DNS label', (p: AnyPod) => (c0(p).name = 'a/b~c\nd'), 'spec.containers[0].name'],
    ['two containers of one name', (p: AnyPod) => p.spec.containers.push({ name: 'web' }), 'spec.containers[1].name "web" is used by another container'],
    ['an init container named like an app container', (p: AnyPod) => (p.spec.initContainers = [{ name: 'web' }]), 'spec.initContainers[0].name "web"'],
  ])('%s', async (_name, f, field) => {
    const out = await admit(mutate(f as (p: AnyPod) => void));
    expect(out).toMatchObject({ decision: 'denied', reason: 'TESSERA_ERR_INJECT_NOT_A_POD', response: { allowed: false, status: { code: 400 } } });
    expect(out.response.status!.message).toContain(field);
  });

  test('a probe nested 100 000 deep inside its handler is injected (nothing of it is copied), not a 500', async () => {
    const pod = mutate((p) => (c0(p).readinessProbe = { httpGet: { port: 8080, path: '/r', extra: nested(100_000) }, periodSeconds: 3 }));
    const out = await admit(pod);
    expect(out.decision).toBe('injected');
    const ops = JSON.parse(Buffer.from(out.response.patch!, 'base64').toString()) as { path: string; value: unknown }[];
    expect(ops.find((o) => o.path === '/spec/containers/0/readinessProbe')?.value).toEqual({ periodSeconds: 3, httpGet: { path: '/app-health/web/readiness', port: 15000, scheme: 'HTTP' } });
  });

  test('random damage to a pod never makes an internal error (seeded, bounded)', async () => {
    const junk = [null, [], {}, [null], [{}], 'x', 1.5, -1, true, nested(5_000), { name: 1 }, [{ name: 'a', mountPath: 7 }]];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const paths: ((p: AnyPod, v: unknown) => void)[] = [
      (p, v) => (c0(p).ports = v),
      (p, v) => (c0(p).env = v),
      (p, v) => (c0(p).volumeMounts = v),
      (p, v) => (c0(p).readinessProbe = v),
      (p, v) => (c0(p).livenessProbe = { httpGet: v }),
      (p, v) => (c0(p).startupProbe = { tcpSocket: { port: v } }),
      (p, v) => (c0(p).livenessProbe = { httpGet: { port: 8080, httpHeaders: v } }),
      (p, v) => (p.spec.volumes = v as unknown[]),
      (p, v) => (p.spec.initContainers = v as Record<string, unknown>[]),
      (p, v) => (c0(p).restartPolicy = v),
      (p, v) => Object.assign(p.metadata, { labels: v }),
      (p, v) => (p.spec.containers[0] = v as Record<string, unknown>),
    ];
    const ctx = await testContext();
    const base = readAdmissionReview(admissionReview(appPod()));
    for (let i = 0; i < 400; i++) {
      const pod = appPod() as AnyPod;
      for (let k = 0; k <= rnd(3); k++) paths[rnd(paths.length)]!(pod, junk[rnd(junk.length)]);
      const out = admitPod({ ...base, object: pod }, ctx);
      expect(out.reason, JSON.stringify(out.response.status)).not.toBe('internal');
    }
  });
});

test('an unexpected failure points to the injector log (the standalone injector writes it)', async () => {
  const hostile = appPod();
  Object.defineProperty(hostile.spec as object, 'hostNetwork', {
    get: () => {
      throw new Error('boom');
    },
    enumerable: true,
  });
  const out = await admit(hostile);
  expect(out.response.status).toMatchObject({ code: 500, message: 'tessera injector: internal error (see the injector log)' });
});

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

test('the shapes accepted stay schema-valid after injection', async () => {
  const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as AnyPod;
  pod.spec.containers[0]!.readinessProbe = { httpGet: { port: 'http', path: 'healthz' }, timeoutSeconds: 90 };
  const after = patched(pod, await admit(pod));
  expect(validateK8sObject({ ...after, apiVersion: 'v1', kind: 'Pod' }).errors).toEqual([]);
});
