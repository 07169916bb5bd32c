// Reinvocation (reinvocationPolicy: IfNeeded) after a later webhook added containers (audit 4, A3): the new ones get
// what the first pass gave the others (Workload API mount, SPIFFE_ENDPOINT_SOCKET, proxy variables, rewritten
// probes in the pod's own proxy config), once; user native sidecars count as app containers; anything that is not
// the injector's own injection is left as it is.

import { describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { hasControlCharacters } from '../../../../common/text/control-characters.js';
import { admitPod, readAdmissionReview } from '../../../../control-plane/src/injector/admission-review.js';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { applyAdditions, jsonPatchFor } from '../../../../control-plane/src/injector/pod-patch.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { admissionReview, appPod, testContext } from '../../../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';

interface C {
  name: string;
  image?: string;
  restartPolicy?: string;
  readinessProbe?: { httpGet?: { path: string; port: number | string }; tcpSocket?: { port: number } };
  startupProbe?: { httpGet?: { path: string; port: number }; tcpSocket?: { port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
  env?: { name: string; value?: string }[];
}
interface P {
  metadata: { annotations: Record<string, string> };
  spec: { initContainers: C[]; containers: C[]; volumes: { name: string }[] };
}

async function pass(pod: unknown): Promise<{ pod: P; changed: boolean; warning?: string }> {
  const ctx = await testContext();
  const plan = planInjection({ pod }, ctx);
  if (plan.action === 'skip') return { pod: pod as P, changed: false, ...(plan.warning ? { warning: plan.warning } : {}) };
  const patched = applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions)) as P;
  // The CLI's direct construction agrees with the patch.
  expect(patched).toEqual(applyAdditions(plan.pod, plan.additions));
  expect(validateK8sObject({ ...patched, apiVersion: 'v1', kind: 'Pod' }).errors).toEqual([]);
  return { pod: patched, changed: true };
}

const socketMount = (c: C) => (c.volumeMounts ?? []).filter((m) => m.name === 'tessera-workload-api');
const envOf = (c: C) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const configOf = (p: P) => parseProxyConfig(p.metadata.annotations['tessera.dev/proxy-config']!, '/var/run/tessera/config/proxy.yaml');

async function injected(annotations: Record<string, string> = { 'tessera.dev/inbound-ports': '8080' }): Promise<P> {
  const pod = appPod({ annotations }) as unknown as P;
  pod.spec.containers[0]!.readinessProbe = { httpGet: { path: '/r', port: 8080 } };
  const first = await pass(pod);
  expect(first.changed).toBe(true);
  return first.pod;
}

describe('reinvocation after a later webhook', () => {
  test('a native sidecar inserted before tessera-proxy keeps its probes and gets nothing: it starts first (audit 5, N3)', async () => {
    const later = structuredClone(await injected());
    later.spec.initContainers.unshift({ name: 'agent', image: 'a', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 9000 } } });
    later.spec.initContainers.push({ name: 'after', image: 'b', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 9100 } } });
    const second = await pass(later);
    expect(second.changed).toBe(true);
    const inits = second.pod.spec.initContainers;
    const [agent, proxy] = inits;
    const after = inits.find((c) => c.name === 'after');
    expect(proxy!.name).toBe('tessera-proxy');
    expect(agent).toEqual({ name: 'agent', image: 'a', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 9000 } } });
    expect(socketMount(after!)).toHaveLength(1);
    expect(after!.startupProbe!.httpGet!.port).toBe(15000);
    // Only before tessera-proxy: the same agent inserted first leaves a pod with nothing to add.
    const only = structuredClone(await injected());
    only.spec.initContainers.unshift({ name: 'agent', image: 'a', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 9000 } } });
    expect((await pass(only)).changed).toBe(false);
  });

  test('a container and a native sidecar added later get the socket, env and probes; then nothing more changes', async () => {
    const later = structuredClone(await injected());
    later.spec.containers.push({ name: 'added', image: 'x', readinessProbe: { httpGet: { path: '/', port: 9000 } } });
    later.spec.initContainers.push({ name: 'log-shipper', image: 'y', restartPolicy: 'Always', startupProbe: { tcpSocket: { port: 9100 } } });
    const second = await pass(later);
    expect(second.changed).toBe(true);
    const p = second.pod;
    expect(p.spec.initContainers.filter((c) => c.name === 'tessera-proxy')).toHaveLength(1);
    for (const c of [p.spec.containers[0]!, p.spec.containers[1]!, p.spec.initContainers[2]!]) {
      expect(socketMount(c), c.name).toHaveLength(1);
      expect(envOf(c)['SPIFFE_ENDPOINT_SOCKET']).toBe('unix:///var/run/tessera/workload/workload.sock');
    }
    expect(p.spec.containers[1]!.readinessProbe).toEqual({ httpGet: { path: '/app-health/added/readiness', port: 15000, scheme: 'HTTP' } });
    expect(p.spec.initContainers[2]!.startupProbe).toEqual({ httpGet: { path: '/app-health/log-shipper/startup', port: 15000, scheme: 'HTTP' } });
    // The regular init container is not an app container.
    expect(socketMount(p.spec.initContainers[1]!)).toEqual([]);
    // The config keeps what the first pass wrote and gains the new probes; the proxy accepts it.
    const config = configOf(p);
    expect(Object.keys(config.admin.appProbes).sort()).toEqual(['added/readiness', 'log-shipper/startup', 'web/readiness']);
    expect(config.admin.appProbes['log-shipper/startup']).toMatchObject({ port: 9100, tcp: true });
    expect(config.inbound.map((l) => l.forwardTo)).toEqual([{ host: '127.0.0.1', port: 8080 }]);
    // Idempotent: the next reinvocation has nothing to add.
    expect(await pass(p)).toMatchObject({ changed: false });
  });

  test('a config without app probes yet gains the block, the rest of it (outbound, telemetry) unchanged', async () => {
    const annotations = {
      'tessera.dev/inbound-ports': '8080',
      'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/default/sa/api@api.default.svc:15006',
      'tessera.dev/tracing-endpoint': 'http://otel:4318/v1/traces',
    };
    const first = (await pass(appPod({ annotations }))).pod;
    const before = configOf(first);
    expect(before.admin.appProbes).toEqual({});
    const later = structuredClone(first);
    later.spec.containers.push({ name: 'added', image: 'x', readinessProbe: { httpGet: { path: '/ok', port: 9000 } } });
    const after = configOf((await pass(later)).pod);
    expect(after.admin.appProbes).toEqual({ 'added/readiness': { port: 9000, tcp: false, path: '/ok', scheme: 'HTTP', timeoutMs: 1000, headers: {} } });
    expect({ ...after, admin: { ...after.admin, appProbes: {} } }).toEqual(before);
  });

  test('with tessera.dev/http-proxy the added container gets HTTP_PROXY and NO_PROXY too', async () => {
    const later = structuredClone(await injected({ 'tessera.dev/inbound-ports': '8080', 'tessera.dev/http-proxy': 'true' }));
    later.spec.containers.push({ name: 'added', image: 'x' });
    const env = envOf((await pass(later)).pod.spec.containers[1]!);
    expect(env).toMatchObject({ HTTP_PROXY: 'http://127.0.0.1:15080', http_proxy: 'http://127.0.0.1:15080' });
    expect(env['NO_PROXY']).toBe(env['no_proxy']);
  });

  test('the added container is checked like the first ones: a reserved port or the socket path is a conflict', async () => {
    const ctx = await testContext();
    const port = structuredClone(await injected());
    port.spec.containers.push({ name: 'added', image: 'x', ports: [{ containerPort: 15000 }] } as C);
    expect(() => planInjection({ pod: port }, ctx)).toThrow(/port 15000/);
    const mount = structuredClone(await injected());
    mount.spec.containers.push({ name: 'added', image: 'x', volumeMounts: [{ name: 'v', mountPath: '/var/run/tessera//workload' }] });
    expect(() => planInjection({ pod: mount }, ctx)).toThrow(/Workload API socket/);
    // Audit 59d F1: the 409 quoted the mountPath whole (1,000,176 characters came back), control characters and all.
    const long = structuredClone(await injected());
    long.spec.containers.push({ name: 'added', image: 'x', volumeMounts: [{ name: 'v', mountPath: `/var/run/tessera/workload/\u0000\u001b${'a'.repeat(1_000_000)}` }] });
    const out = admitPod(readAdmissionReview(admissionReview(long as unknown as Record<string, unknown>)), ctx);
    expect(out.response).toMatchObject({ allowed: false, status: { code: 409 } });
    expect(out.response.status!.message.length).toBeLessThan(2_200);
    expect(hasControlCharacters(out.response.status!.message)).toBe(false);
  });

  test("a config annotation that is gone or not as the injector writes it: no patch, and a warning naming the containers left out", async () => {
    for (const value of [undefined, 'not: [yaml', '- a list', 'admin:\n  listen: 0.0.0.0:15000\n  appProbes: {}\n']) {
      const later = structuredClone(await injected());
      if (value === undefined) delete later.metadata.annotations['tessera.dev/proxy-config'];
      else later.metadata.annotations['tessera.dev/proxy-config'] = value;
      later.spec.containers.push({ name: 'added', image: 'x', readinessProbe: { tcpSocket: { port: 9000 } } });
      const out = await pass(later);
      expect(out.changed).toBe(false);
      expect(out.warning).toContain('"added"');
    }
  });

  test("someone else's container named tessera-proxy (no socket volume, or not a native sidecar) is left alone", async () => {
    const forged = appPod() as unknown as P;
    forged.spec.initContainers.unshift({ name: 'tessera-proxy', image: 'other', restartPolicy: 'Always' });
    expect(await pass(forged)).toMatchObject({ changed: false });
    const plain = appPod() as unknown as P;
    plain.spec.containers.push({ name: 'tessera-proxy', image: 'other' });
    expect(await pass(plain)).toMatchObject({ changed: false });
  });
});

describe('user native sidecars at first injection', () => {
  test('they are app containers: socket, env and probes; the patch addresses them after the inserted sidecar', async () => {
    const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as unknown as P;
    pod.spec.initContainers.push({ name: 'envoy-ish', image: 'z', restartPolicy: 'Always', readinessProbe: { tcpSocket: { port: 9901 } } });
    const p = (await pass(pod)).pod;
    expect(p.spec.initContainers.map((c) => c.name)).toEqual(['tessera-proxy', 'migrate', 'envoy-ish']);
    const sidecar = p.spec.initContainers[2]!;
    expect(socketMount(sidecar)).toHaveLength(1);
    expect(sidecar.readinessProbe).toEqual({ httpGet: { path: '/app-health/envoy-ish/readiness', port: 15000, scheme: 'HTTP' } });
    expect(socketMount(p.spec.initContainers[1]!)).toEqual([]);
    expect(parseYaml(p.metadata.annotations['tessera.dev/proxy-config']!).admin.appProbes['envoy-ish/readiness']).toMatchObject({ port: 9901, tcp: true });
  });
});

describe('the config is extended as text, never parsed (the annotation is the request’s)', () => {
  test('a config not laid out as the injector writes it, however large, is left alone quickly', async () => {
    const ctx = await testContext();
    const base = structuredClone(await injected());
    base.spec.containers.push({ name: 'added', image: 'x', readinessProbe: { httpGet: { path: '/', port: 9000 } } });
    // Shapes that cost a YAML parser hundreds of milliseconds at this size (many keys, flow collections).
    for (const config of [Array.from({ length: 9_000 }, (_, i) => `k${i}: 1`).join('\n'), `[${'{a: 1},'.repeat(30_000)}]`, 'admin:\n  listen: 0.0.0.0:15000\n  other: 1\n']) {
      const pod = structuredClone(base);
      pod.metadata.annotations['tessera.dev/proxy-config'] = config;
      const t0 = performance.now();
      const plan = planInjection({ pod }, ctx);
      expect(performance.now() - t0).toBeLessThan(50);
      expect(plan).toMatchObject({ action: 'skip', reason: 'already-injected', warning: expect.stringContaining('"added"') });
    }
  });

  test('an entry of the same name already in the config is not written twice', async () => {
    const later = structuredClone(await injected());
    later.spec.containers[0]!.volumeMounts = later.spec.containers[0]!.volumeMounts!.filter((m) => m.name !== 'tessera-workload-api');
    later.spec.containers[0]!.readinessProbe = { httpGet: { path: '/again', port: 8080 } };
    expect(await pass(later)).toMatchObject({ changed: false, warning: expect.stringContaining('"web"') });
  });
});
