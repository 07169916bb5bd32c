// Kubelet probes of injected app containers: httpGet/tcpSocket probes are pointed at the sidecar's admin port
// (/app-health/<container>/<kind>) with their timing kept; the generated proxy config carries what to run and is
// accepted by the proxy's own config parser; other probes are left alone; the injected pod stays schema-valid.

import { describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { applyAdditions, jsonPatchFor } from '../../../../control-plane/src/injector/pod-patch.js';
import { rewriteProbes } from '../../../../control-plane/src/injector/probe-rewrite.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';

function podWithProbes(): Record<string, unknown> {
  const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as { spec: { containers: Record<string, unknown>[] } };
  Object.assign(pod.spec.containers[0]!, {
    readinessProbe: { httpGet: { path: '/ready?deep=1', port: 'http', httpHeaders: [{ name: 'X-Probe', value: 'k8s' }] }, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 4 },
    livenessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 5 },
    startupProbe: { grpc: { port: 9090 }, failureThreshold: 30 },
  });
  pod.spec.containers.push({
    name: 'worker',
    image: 'registry.example/worker:1',
    readinessProbe: { exec: { command: ['/bin/true'] } },
    livenessProbe: { httpGet: { host: 'example.net', path: '/', port: 80 } },
    startupProbe: { httpGet: { path: '/started', port: 'missing-name' } },
  });
  return pod;
}

describe('probe rewriting', () => {
  test('httpGet and tcpSocket probes go to the sidecar with their timing; grpc, exec, other hosts and unknown ports stay', () => {
    const pod = podWithProbes() as { spec: { containers: Parameters<typeof rewriteProbes>[0][] } };
    const web = rewriteProbes(pod.spec.containers[0]!);
    expect(web.probes).toEqual({
      readinessProbe: { httpGet: { path: '/app-health/web/readiness', port: 15000, scheme: 'HTTP' }, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 4 },
      livenessProbe: { httpGet: { path: '/app-health/web/liveness', port: 15000, scheme: 'HTTP' }, initialDelaySeconds: 5 },
    });
    expect(web.targets).toEqual({
      'web/readiness': { port: 8080, path: '/ready?deep=1', headers: { 'X-Probe': 'k8s' }, timeout: '2s' },
      'web/liveness': { port: 8080, tcp: true, timeout: '1s' },
    });
    expect(rewriteProbes(pod.spec.containers[1]!)).toEqual({ probes: {}, targets: {} });
  });

  test('the injected pod (patch and direct paths agree) is schema-valid and its proxy config runs the probes', async () => {
    const pod = podWithProbes();
    const plan = planInjection({ pod }, await testContext());
    if (plan.action !== 'inject') throw new Error(plan.reason);
    const patched = applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions)) as Record<string, unknown>;
    expect(patched).toEqual(applyAdditions(plan.pod, plan.additions));
    const spec = (patched as { spec: { containers: Record<string, { httpGet?: { path: string; port: number } }>[] } }).spec;
    expect(spec.containers[0]!.readinessProbe!.httpGet).toEqual({ path: '/app-health/web/readiness', port: 15000, scheme: 'HTTP' });
    expect(spec.containers[0]!.startupProbe).toEqual({ grpc: { port: 9090 }, failureThreshold: 30 });
    expect(spec.containers[1]!.livenessProbe!.httpGet).toEqual({ host: 'example.net', path: '/', port: 80 });
    expect(validateK8sObject({ ...patched, apiVersion: 'v1', kind: 'Pod' }).errors).toEqual([]);

    const yaml = (patched as { metadata: { annotations: Record<string, string> } }).metadata.annotations['tessera.dev/proxy-config']!;
    expect(parseYaml(yaml).admin.appProbes['web/readiness']).toEqual({ port: 8080, path: '/ready?deep=1', headers: { 'X-Probe': 'k8s' }, timeout: '2s' });
    const config = parseProxyConfig(yaml, '/var/run/tessera/config/proxy.yaml');
    expect(config.admin.appProbes).toEqual({
      'web/readiness': { port: 8080, tcp: false, path: '/ready?deep=1', scheme: 'HTTP', timeoutMs: 2000, headers: { 'X-Probe': 'k8s' } },
      'web/liveness': { port: 8080, tcp: true, path: '/', scheme: 'HTTP', timeoutMs: 1000, headers: {} },
    });
  });

  test('a pod with no port annotation gets an SVID-only sidecar config the proxy itself accepts (no listener, the Workload API)', async () => {
    const plan = planInjection({ pod: appPod() }, await testContext());
    if (plan.action !== 'inject') throw new Error(plan.reason);
    const config = parseProxyConfig(plan.additions.annotations['tessera.dev/proxy-config']!, '/var/run/tessera/config/proxy.yaml');
    expect([config.inbound, config.outbound, config.edge]).toEqual([[], [], []]);
    expect(config.workloadApi?.socket).toMatch(/^\/var\/run\/tessera\//);
  });

  test('a pod without rewritable probes gets no appProbes key', async () => {
    const plan = planInjection({ pod: appPod() }, await testContext());
    if (plan.action !== 'inject') throw new Error(plan.reason);
    expect(parseYaml(plan.additions.annotations['tessera.dev/proxy-config']!).admin).toEqual({ listen: '0.0.0.0:15000' });
    expect(plan.additions.appContainers[0]!.probes).toBeUndefined();
  });
});

// Audit 4, A2: the injector wrote `timeout: 90s` for a valid probe (timeoutSeconds: 90) and the proxy refused its own
// config (at most 60 s), so the pod never started. Every config the injector writes must parse with the proxy's parser.
describe('every Kubernetes probe gives a config the proxy accepts', () => {
  const configOf = async (probes: Record<string, unknown>, ports: unknown[] = [{ containerPort: 8080, name: 'http' }]) => {
    const pod = appPod({ annotations: { 'tessera.dev/inbound-ports': '8080' } }) as { spec: { containers: Record<string, unknown>[] } };
    Object.assign(pod.spec.containers[0]!, { ports }, probes);
    const plan = planInjection({ pod }, await testContext());
    if (plan.action !== 'inject') throw new Error(plan.reason);
    const patched = applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions)) as unknown as { metadata: { annotations: Record<string, string> } };
    expect(validateK8sObject({ ...patched, apiVersion: 'v1', kind: 'Pod' }).errors).toEqual([]);
    return parseProxyConfig(patched.metadata.annotations['tessera.dev/proxy-config']!, '/var/run/tessera/config/proxy.yaml');
  };

  test.each([
    [1, 1000],
    [59, 59_000],
    [60, 60_000],
    [61, 60_000],
    [90, 60_000],
    [3600, 60_000],
    [2_147_483_647, 60_000],
  ])('timeoutSeconds %d runs the app probe for %d ms (the proxy allows 100 ms to 60 s)', async (seconds, ms) => {
    const config = await configOf({ livenessProbe: { httpGet: { port: 8080 }, timeoutSeconds: seconds }, readinessProbe: { tcpSocket: { port: 'http' }, timeoutSeconds: seconds } });
    expect(config.admin.appProbes['web/liveness']!.timeoutMs).toBe(ms);
    expect(config.admin.appProbes['web/readiness']!.timeoutMs).toBe(ms);
  });

  test('many valid probe shapes (ports, paths, schemes, headers, timings) all parse', async () => {
    const ports = [8080, '8080', 'http', 1, 65535];
    const paths = [undefined, '', '/', 'healthz', '/a b', '/ü/ö?x=1&y=ä', '/x#frag', '/%41', "/q?a='\"'", '/\t'];
    const timings = [{}, { initialDelaySeconds: 0, periodSeconds: 1, successThreshold: 1, failureThreshold: 1 }, { periodSeconds: 3600, failureThreshold: 1000, terminationGracePeriodSeconds: 30 }, { timeoutSeconds: 0 }];
    const headerSets = [undefined, [], [{ name: 'X-A', value: '' }], [{ name: 'Host', value: 'app.local' }, { name: 'x-b', value: 'ü é\t!' }]];
    let n = 0;
    for (const port of ports) {
      for (const path of paths) {
        const timing = timings[n % timings.length]!;
        const httpHeaders = headerSets[n % headerSets.length];
        const scheme = n % 3 === 0 ? 'HTTPS' : n % 3 === 1 ? 'HTTP' : undefined;
        n++;
        const httpGet = { port, ...(path === undefined ? {} : { path }), ...(scheme ? { scheme } : {}), ...(httpHeaders ? { httpHeaders } : {}) };
        const config = await configOf({ startupProbe: { httpGet, ...timing }, livenessProbe: { tcpSocket: { port }, ...timing }, readinessProbe: { grpc: { port: 9090 } } }, [
          { containerPort: 8080, name: 'http' },
          { containerPort: 9090, name: 'grpc' },
        ]);
        const target = config.admin.appProbes['web/startup']!;
        // What node:http (the sidecar's probe client) can send: a rooted path of printable ASCII.
        expect(target.path).toMatch(/^\/[\x21-\x7e]*$/);
        expect(config.admin.appProbes['web/liveness']!.tcp).toBe(true);
        expect(config.admin.appProbes['web/readiness']).toBeUndefined();
      }
    }
  });

  test('a path is sent as the kubelet sends it: rooted, and percent-encoded where a request line cannot carry it', async () => {
    const config = await configOf({ livenessProbe: { httpGet: { port: 8080, path: 'healthz' } }, readinessProbe: { httpGet: { port: 8080, path: '/a b/ü?q=1' } } });
    expect(config.admin.appProbes['web/liveness']!.path).toBe('/healthz');
    expect(config.admin.appProbes['web/readiness']!.path).toBe('/a%20b/%C3%BC?q=1');
  });

  test("a probe of a port the sidecar owns (its admin port, an outbound port) is left to the kubelet: no self-probing", async () => {
    const config = await configOf({ livenessProbe: { httpGet: { port: 15000, path: '/ready' } }, readinessProbe: { tcpSocket: { port: 15101 } } });
    expect(config.admin.appProbes).toEqual({});
  });

  test('a named port that resolves to no valid port number is left alone', async () => {
    const c = { name: 'web', ports: [{ containerPort: 70000, name: 'big' }], livenessProbe: { httpGet: { port: 'big' } } };
    expect(rewriteProbes(c as unknown as Parameters<typeof rewriteProbes>[0])).toEqual({ probes: {}, targets: {} });
  });
});
