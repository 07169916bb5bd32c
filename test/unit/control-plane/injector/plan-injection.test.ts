// Injection of one pod: the JSON Patch applied by an independent applier gives the expected pod, valid for the
// Kubernetes schema; skips, idempotency and refusals.
import { parse as parseYaml } from 'yaml';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { resolveInjectorConfig } from '../../../../control-plane/src/injector/injector-config.js';
import { type InjectionContext, planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { applyAdditions, jsonPatchFor } from '../../../../control-plane/src/injector/pod-patch.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';
import { TEST_CONFIG, appPod, barePod, testContext } from '../../../helpers/injector-fixtures.js';

interface Probe {
  httpGet: { path: string; port: number; scheme: string };
  periodSeconds: number;
  failureThreshold: number;
}
interface C {
  name: string;
  image?: string;
  restartPolicy?: string;
  args?: string[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: unknown;
  resources?: unknown;
  ports?: { containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  env?: { name: string; value?: string }[];
}
interface V {
  name: string;
  projected?: { sources: unknown[] };
  downwardAPI?: { items: unknown[] };
  emptyDir?: { medium?: string; sizeLimit?: string };
}
interface AnyPod {
  metadata: { annotations: Record<string, string> };
  spec: { initContainers: C[]; containers: C[]; volumes: V[] };
}

function inject(pod: unknown, ctx: InjectionContext): AnyPod {
  const plan = planInjection({ pod }, ctx);
  if (plan.action !== 'inject') throw new Error(`expected inject, got ${plan.action} (${plan.reason})`);
  return applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions)) as AnyPod;
}

function refusal(pod: unknown, ctx: InjectionContext): { code: string; message: string } {
  try {
    planInjection({ pod }, ctx);
  } catch (e) {
    if (isTesseraError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('planInjection + JSON Patch', () => {
  test('adds the native sidecar first, once, with probes, security context, resources and mounts', async () => {
    const ctx = await testContext();
    const pod = inject(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), ctx);
    const init = pod.spec.initContainers;
    expect(init.map((c) => c.name)).toEqual(['tessera-proxy', 'migrate']);
    expect([...init, ...pod.spec.containers].filter((c) => c.name === 'tessera-proxy')).toHaveLength(1);
    const s = init[0]!;
    expect(s.restartPolicy).toBe('Always');
    expect(s.image).toBe('registry.example/tessera:0.1.0');
    expect(s.args).toEqual(['proxy', '--config', '/var/run/tessera/config/proxy.yaml']);
    expect(s.startupProbe!.httpGet).toEqual({ path: '/ready', port: 15000, scheme: 'HTTP' });
    expect(s.readinessProbe!.httpGet.path).toBe('/ready');
    expect(s.livenessProbe!.httpGet.path).toBe('/healthz');
    expect(s.startupProbe!.failureThreshold * s.startupProbe!.periodSeconds).toBeGreaterThanOrEqual(60);
    expect(s.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(s.resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } });
    expect(s.ports!.map((p) => p.containerPort)).toEqual([15000, 15006]);
    expect(s.volumeMounts).toContainEqual({ name: 'tessera-token', mountPath: '/var/run/secrets/tessera', readOnly: true });
    expect(s.volumeMounts).toContainEqual({ name: 'tessera-config', mountPath: '/var/run/tessera/config', readOnly: true });
  });

  test('volumes: projected token for audience tessera, downward-API config, memory emptyDirs; user volumes kept', async () => {
    const pod = inject(appPod(), await testContext());
    const byName = new Map(pod.spec.volumes.map((v) => [v.name, v]));
    expect([...byName.keys()]).toEqual(['data', 'tessera-token', 'tessera-config', 'tessera-workload-api', 'tessera-tmp']);
    expect(byName.get('tessera-token')!.projected!.sources).toEqual([{ serviceAccountToken: { audience: 'tessera', expirationSeconds: 3600, path: 'token' } }]);
    expect(byName.get('tessera-config')!.downwardAPI!.items).toEqual([
      { path: 'proxy.yaml', fieldRef: { fieldPath: "metadata.annotations['tessera.dev/proxy-config']" } },
      { path: 'bundle.pem', fieldRef: { fieldPath: "metadata.annotations['tessera.dev/bootstrap-bundle']" } },
    ]);
    expect(byName.get('tessera-workload-api')!.emptyDir!.medium).toBe('Memory');
  });

  test('the app container gets the Workload API socket (read-only) and SPIFFE_ENDPOINT_SOCKET; its own kept', async () => {
    const pod = inject(appPod(), await testContext());
    const app = pod.spec.containers[0]!;
    expect(app.volumeMounts).toEqual([
      { name: 'data', mountPath: '/data' },
      { name: 'tessera-workload-api', mountPath: '/var/run/tessera/workload', readOnly: true },
    ]);
    expect(app.env).toEqual([
      { name: 'MODE', value: 'prod' },
      { name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///var/run/tessera/workload/workload.sock' },
    ]);
    const own = appPod();
    (own.spec as AnyPod['spec']).containers[0]!.env!.push({ name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///mine' });
    const kept = inject(own, await testContext()).spec.containers[0]!.env!;
    expect(kept.filter((e) => e.name === 'SPIFFE_ENDPOINT_SOCKET')).toEqual([{ name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///mine' }]);
  });

  test('the proxy config (DESIGN section 8) comes from the annotations, the bundle is the current one', async () => {
    const ctx = await testContext();
    const pod = inject(
      appPod({
        annotations: {
          'tessera.dev/inbound-ports': '8080,9090/grpc',
          'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/default/sa/api@api.default.svc:15006',
        },
      }),
      ctx,
    );
    const a = pod.metadata.annotations;
    expect(a['tessera.dev/injected']).toBe('0.1.0');
    expect(a['tessera.dev/bootstrap-bundle']).toBe(ctx.bundlePem);
    expect(parseYaml(a['tessera.dev/proxy-config']!)).toEqual({
      identity: {
        controlPlane: {
          address: 'tessera-control-plane.tessera-system.svc:8443',
          bundleFile: '/var/run/tessera/config/bundle.pem',
          kubernetesTokenFile: '/var/run/secrets/tessera/token',
          stateDir: '/tmp/tessera-state',
        },
      },
      inbound: [
        { name: 'app-8080', listen: '0.0.0.0:15006', forwardTo: '127.0.0.1:8080', protocol: 'http' },
        { name: 'app-9090', listen: '0.0.0.0:15007', forwardTo: '127.0.0.1:9090', protocol: 'grpc' },
      ],
      outbound: [
        { name: 'api', listen: '127.0.0.1:15101', upstream: 'api.default.svc:15006', spiffeId: 'spiffe://cluster.local/ns/default/sa/api', protocol: 'http' },
      ],
      admin: { listen: '0.0.0.0:15000' },
      workloadApi: { socket: '/var/run/tessera/workload/workload.sock' },
    });
    expect(pod.spec.initContainers[0]!.ports!.map((p) => p.containerPort)).toEqual([15000, 15006, 15007]);
  });

  test('the state dir is on the sidecar\'s own memory emptyDir: it outlives a container restart, not the pod, and no app container mounts it', async () => {
    // Audit 53c F1: the bootstrap bundle is an annotation frozen at admission; after a CA rotation a restarted sidecar
    // verifies the control plane only with the bundle it kept here.
    const pod = inject(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), await testContext());
    const stateDir = (parseYaml(pod.metadata.annotations['tessera.dev/proxy-config']!) as { identity: { controlPlane: { stateDir: string } } }).identity.controlPlane.stateDir;
    const sidecar = pod.spec.initContainers[0]!;
    const holding = sidecar.volumeMounts!.filter((m) => stateDir.startsWith(`${m.mountPath}/`));
    expect(holding).toEqual([{ name: 'tessera-tmp', mountPath: '/tmp' }]);
    expect(pod.spec.volumes.find((v) => v.name === 'tessera-tmp')!.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '16Mi' });
    const others = [...pod.spec.initContainers, ...pod.spec.containers].filter((c) => c.name !== 'tessera-proxy');
    expect(others.flatMap((c) => c.volumeMounts ?? []).filter((m) => m.name === 'tessera-tmp')).toEqual([]);
  });

  test('a bare pod (no annotations, no lists) gets every list created; annotation keys are ~1-escaped', async () => {
    const ctx = await testContext();
    const bare = barePod();
    const plan = planInjection({ pod: bare }, ctx);
    if (plan.action !== 'inject') throw new Error('expected inject');
    const ops = jsonPatchFor(plan.pod, plan.additions);
    expect(ops.map((o) => o.path)).toEqual([
      '/metadata/annotations',
      '/spec/initContainers',
      '/spec/volumes',
      '/spec/containers/0/volumeMounts',
      '/spec/containers/0/env',
    ]);
    const withAnn = appPod({ annotations: { owner: 'team-a' } });
    const plan2 = planInjection({ pod: withAnn }, ctx);
    if (plan2.action !== 'inject') throw new Error('expected inject');
    expect(jsonPatchFor(plan2.pod, plan2.additions).filter((o) => o.path.startsWith('/metadata')).map((o) => o.path)).toEqual([
      '/metadata/annotations/tessera.dev~1injected',
      '/metadata/annotations/tessera.dev~1proxy-config',
      '/metadata/annotations/tessera.dev~1bootstrap-bundle',
    ]);
    const patched = applyJsonPatch(withAnn, jsonPatchFor(plan2.pod, plan2.additions)) as unknown as AnyPod;
    expect(patched.metadata.annotations.owner).toBe('team-a');
  });

  test('the patch and the direct construction (used by tessera inject) give the same pod', async () => {
    const ctx = await testContext();
    for (const pod of [appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }), barePod()]) {
      const plan = planInjection({ pod }, ctx);
      if (plan.action !== 'inject') throw new Error('expected inject');
      expect(applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions))).toEqual(applyAdditions(plan.pod, plan.additions));
    }
  });

  test('the injected pod validates against the Kubernetes schema, with no unknown field', async () => {
    const ctx = await testContext();
    const cfg = resolveInjectorConfig({ ...TEST_CONFIG, resources: { limits: { cpu: '1' } } });
    for (const pod of [
      inject(appPod({ annotations: { 'tessera.dev/inbound-ports': '8080,9090', 'tessera.dev/outbound': 'a=spiffe://td/a@a.svc:1' } }), ctx),
      inject(barePod(), { ...ctx, config: cfg }),
    ]) {
      expect(validateK8sObject(pod).errors).toEqual([]);
    }
    expect(validateK8sObject(appPod()).ok).toBe(true);
  });
});

describe('skips and idempotency', () => {
  test('an injected pod is left alone: re-invocation gives no patch', async () => {
    const ctx = await testContext();
    const once = inject(appPod(), ctx);
    expect(planInjection({ pod: once }, ctx)).toEqual({ action: 'skip', reason: 'already-injected' });
  });
  test('a pod that already has a tessera-proxy container (e.g. from tessera inject) is left alone', async () => {
    const pod = barePod();
    (pod.spec as AnyPod['spec']).containers.push({ name: 'tessera-proxy', image: 'x' });
    const plan = planInjection({ pod }, await testContext());
    expect(plan).toMatchObject({ action: 'skip', reason: 'already-injected' });
    // Not the injector's own sidecar: left alone, but the user is told (an outside audit: it said nothing).
    expect(plan.action === 'skip' && plan.warning).toContain('a container named "tessera-proxy" that is not the injector\'s sidecar');
  });
  test('a copied tessera.dev/injected annotation without the container does not stop injection', async () => {
    const pod = inject(appPod({ annotations: { 'tessera.dev/injected': '0.0.1' } }), await testContext());
    expect(pod.metadata.annotations['tessera.dev/injected']).toBe('0.1.0');
    expect(pod.spec.initContainers[0]!.name).toBe('tessera-proxy');
  });
  test('pod opt-out, namespace not enabled, hostNetwork (with a warning)', async () => {
    const ctx = await testContext();
    expect(planInjection({ pod: appPod({ annotations: { 'tessera.dev/inject': 'false' } }) }, ctx)).toEqual({ action: 'skip', reason: 'opted-out' });
    expect(planInjection({ pod: appPod(), namespaceLabels: { other: 'x' } }, ctx)).toEqual({ action: 'skip', reason: 'namespace-not-enabled' });
    expect(planInjection({ pod: appPod(), namespaceLabels: { 'tessera.dev/inject': 'enabled' } }, ctx).action).toBe('inject');
    const hn = appPod();
    (hn.spec as Record<string, unknown>).hostNetwork = true;
    const plan = planInjection({ pod: hn }, ctx);
    expect(plan).toMatchObject({ action: 'skip', reason: 'host-network' });
    expect(plan.action === 'skip' && plan.warning).toContain('hostNetwork');
  });
  test('Windows pods are skipped with a warning, like hostNetwork: the sidecar is Linux-only, and its securityContext is forbidden there (audit 17b, F4)', async () => {
    const ctx = await testContext();
    const windows = (spec: Record<string, unknown>) => {
      const pod = appPod();
      Object.assign(pod.spec as Record<string, unknown>, spec);
      return planInjection({ pod }, ctx);
    };
    // The audit's pod: spec.os.name windows, as Kubernetes asks Windows pods to say, with its node selector.
    const byOs = windows({ os: { name: 'windows' }, securityContext: { windowsOptions: { runAsUserName: 'ContainerUser' } }, nodeSelector: { 'kubernetes.io/os': 'windows' } });
    expect(byOs).toMatchObject({ action: 'skip', reason: 'windows' });
    expect(byOs.action === 'skip' && byOs.warning).toBe('tessera: pod runs on Windows (spec.os.name: windows) and was not injected: the sidecar is Linux-only; its traffic is not protected by mTLS');
    // Without spec.os, the node selector alone puts it on Windows nodes, where the Linux sidecar cannot start.
    const bySelector = windows({ nodeSelector: { 'kubernetes.io/os': 'windows' } });
    expect(bySelector).toMatchObject({ action: 'skip', reason: 'windows' });
    expect(bySelector.action === 'skip' && bySelector.warning).toContain('nodeSelector kubernetes.io/os: windows');
    // Linux pods, said so or not, and odd shapes of those fields are injected as before.
    for (const spec of [{ os: { name: 'linux' } }, { nodeSelector: { 'kubernetes.io/os': 'linux' } }, { os: 'windows' }, { os: null, nodeSelector: null }]) {
      expect(windows(spec).action, JSON.stringify(spec)).toBe('inject');
    }
  });
  // Audit 38b, F3: the API server's serviceaccount admission refuses a mirror pod with a projected service-account
  // token, which the sidecar needs: injected, the mirror pod of a static pod could never be created.
  test('mirror pods of static pods, by any of the kubelet\'s marks, are skipped with a warning', async () => {
    const ctx = await testContext();
    const plan = (annotations: Record<string, string>, owners?: unknown) => {
      const pod = appPod({ annotations });
      if (owners !== undefined) (pod.metadata as Record<string, unknown>).ownerReferences = owners;
      return planInjection({ pod }, ctx);
    };
    const node = { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'n1', controller: true };
    // The audit's pod: as the kubelet creates it for a static pod, owned by its Node.
    const mirror = plan({ 'kubernetes.io/config.mirror': 'abc123', 'kubernetes.io/config.source': 'file', 'kubernetes.io/config.hash': 'abc123' }, [node]);
    expect(mirror).toMatchObject({ action: 'skip', reason: 'mirror-pod' });
    expect(mirror.action === 'skip' && mirror.warning).toBe(
      'tessera: pod is a static pod or its mirror (annotation kubernetes.io/config.mirror) and was not injected: the API server refuses a mirror pod with a service-account token volume; its traffic is not protected by mTLS',
    );
    for (const [annotations, owners] of [
      [{ 'kubernetes.io/config.mirror': '' }, undefined], // the key alone, as the API server checks it
      [{ 'kubernetes.io/config.source': 'file' }, undefined],
      [{ 'kubernetes.io/config.source': 'http' }, undefined],
      [{}, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'r', uid: 'r1' }, { ...node, controller: false }]],
    ] as const) {
      expect(plan(annotations, owners), JSON.stringify([annotations, owners])).toMatchObject({ action: 'skip', reason: 'mirror-pod' });
    }
    // Already carrying the sidecar (a static manifest run through tessera inject) with a container added since:
    // still nothing is added.
    const injected = inject(appPod(), ctx) as unknown as Record<string, unknown> & AnyPod;
    injected.metadata.annotations['kubernetes.io/config.mirror'] = 'x';
    injected.spec.containers.push({ name: 'late', image: 'late:1' });
    expect(planInjection({ pod: injected }, ctx)).toMatchObject({ action: 'skip', reason: 'mirror-pod' });
    // An opt-out still reads as one; pods from the API, or owned by anything but a Node, are injected as before.
    expect(plan({ 'kubernetes.io/config.mirror': 'x', 'tessera.dev/inject': 'false' })).toEqual({ action: 'skip', reason: 'opted-out' });
    for (const [annotations, owners] of [
      [{ 'kubernetes.io/config.source': 'api' }, undefined],
      [{ 'example.com/config.mirror': 'x' }, undefined],
      [{}, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'r', uid: 'r1' }]],
      [{}, [{ apiVersion: 'example.com/v1', kind: 'Node', name: 'n', uid: 'n2' }]],
      [{}, 'not a list'],
    ] as const) {
      expect(plan(annotations, owners).action, JSON.stringify([annotations, owners])).toBe('inject');
    }
  });
});

describe('refusals', () => {
  test('malformed annotations name the annotation', async () => {
    const r = refusal(appPod({ annotations: { 'tessera.dev/outbound': 'api=spiffe://td/a' } }), await testContext());
    expect(r.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(r.message).toContain('tessera.dev/outbound');
  });
  test('conflicts: a volume name, a reserved port, the socket path', async () => {
    const ctx = await testContext();
    const vol = appPod();
    (vol.spec as AnyPod['spec']).volumes.push({ name: 'tessera-token', emptyDir: {} });
    expect(refusal(vol, ctx)).toMatchObject({ code: 'TESSERA_ERR_INJECT_CONFLICT', message: expect.stringContaining('"tessera-token"') });
    const port = appPod();
    (port.spec as AnyPod['spec']).containers[0]!.ports!.push({ containerPort: 15000 });
    expect(refusal(port, ctx).message).toContain('port 15000');
    const mount = appPod();
    (mount.spec as AnyPod['spec']).containers[0]!.volumeMounts!.push({ name: 'data', mountPath: '/var/run/tessera/workload/' });
    expect(refusal(mount, ctx).message).toContain('/var/run/tessera/workload');
  });
  // Audit 4, A5: the API server compares mount paths as strings, the runtime mounts the normalised path.
  test.each(['/var/run/tessera//workload', '/var/run/tessera/./workload', '/var/run/tessera/workload//', '/var/run/x/../tessera/workload', 'var/run/tessera/workload', '/var/run/tessera/workload/sub', '/run/tessera/workload', '/run//tessera/workload/sub'])(
    'an app mount at %s (the socket directory, or inside it) is a conflict',
    async (mountPath) => {
      const pod = appPod();
      (pod.spec as AnyPod['spec']).containers[0]!.volumeMounts!.push({ name: 'data', mountPath });
      expect(refusal(pod, await testContext())).toMatchObject({ code: 'TESSERA_ERR_INJECT_CONFLICT', message: expect.stringContaining('/var/run/tessera/workload') });
    },
  );
  test('a mount above the socket directory, or beside it, is not', async () => {
    const pod = appPod();
    (pod.spec as AnyPod['spec']).containers[0]!.volumeMounts!.push({ name: 'data', mountPath: '/var/run/tessera' }, { name: 'data', mountPath: '/var/run/tessera/workload2' });
    expect(inject(pod, await testContext()).spec.initContainers[0]!.name).toBe('tessera-proxy');
  });
  // Audit 38b, F5: an outbound local port a container declares. The sidecar is a native sidecar inserted first, so
  // it holds the port before any other container starts, init containers included.
  test('an outbound local port that a container of the pod declares is refused, naming it', async () => {
    const ctx = await testContext();
    const withPort = (local: number, at: 'containers' | 'native' | 'init', port: Record<string, unknown>) => {
      const pod = appPod({ annotations: { 'tessera.dev/outbound': `api=spiffe://cluster.local/ns/a/sa/api@api.a.svc:15006;local=${local}` } }) as unknown as AnyPod;
      if (at === 'containers') pod.spec.containers.push({ name: 'side', image: 'x', ports: [port as { containerPort: number }] });
      else pod.spec.initContainers.push({ name: 'side', image: 'x', ...(at === 'native' ? { restartPolicy: 'Always' } : {}), ports: [port as { containerPort: number }] });
      return pod;
    };
    // The audit's pod: the app's own declared port (8080, appPod's container "web").
    expect(refusal(withPort(8080, 'containers', { containerPort: 7000 }), ctx)).toEqual({
      code: 'TESSERA_ERR_INJECT_BAD_ANNOTATION',
      message: 'annotation tessera.dev/outbound: upstream "api": local port 8080 is already used by container "web", which declares it (containerPort 8080)',
    });
    for (const [at, port] of [
      ['containers', { containerPort: 9000 }],
      ['containers', { containerPort: 9000, protocol: 'TCP' }],
      ['containers', { containerPort: 9000, hostPort: 30000 }],
      ['native', { containerPort: 9000 }],
      ['init', { containerPort: 9000 }],
    ] as const) {
      expect(refusal(withPort(9000, at, port), ctx).message, `${at} ${JSON.stringify(port)}`).toContain('local port 9000 is already used by container "side"');
    }
    // A UDP or SCTP port does not collide with the sidecar's TCP listener, nor does a hostPort (bound on the node).
    for (const port of [{ containerPort: 9000, protocol: 'UDP' }, { containerPort: 9000, protocol: 'SCTP' }, { containerPort: 7000, hostPort: 9000 }]) {
      expect(planInjection({ pod: withPort(9000, 'containers', port) }, ctx).action, JSON.stringify(port)).toBe('inject');
    }
  });
  test('a container added after injection (reinvocation) may not declare an outbound local port either', async () => {
    const ctx = await testContext();
    const first = inject(appPod({ annotations: { 'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/a/sa/api@api.a.svc:15006;local=9000' } }), ctx);
    const late = (containerPort: number) => {
      const pod = structuredClone(first);
      pod.spec.containers.push({ name: 'late', image: 'late:1', ports: [{ containerPort }] });
      return pod;
    };
    expect(refusal(late(9000), ctx).message).toContain('local port 9000 is already used by container "late"');
    expect(planInjection({ pod: late(9001) }, ctx).action).toBe('inject');
  });
  test('not a pod, and no usable bundle', async () => {
    const ctx = await testContext();
    for (const bad of [null, [], { spec: {} }, { spec: { containers: [] } }, { spec: { containers: [{}] } }, { metadata: { annotations: { a: 1 } }, spec: { containers: [{ name: 'a' }] } }]) {
      expect(refusal(bad, ctx).code).toBe('TESSERA_ERR_INJECT_NOT_A_POD');
    }
    expect(refusal(appPod(), { ...ctx, bundlePem: '' }).code).toBe('TESSERA_ERR_INJECT_NO_BUNDLE');
    expect(refusal(appPod(), { ...ctx, bundlePem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }).code).toBe('TESSERA_ERR_INJECT_NO_BUNDLE');
  });
});
