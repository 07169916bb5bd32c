// Kubelet probes of injected app containers: httpGet/tcpSocket probes are pointed at the sidecar's admin port
// (/app-health/<container>/<kind>) with their timing kept; the generated proxy config carries what to run and is
// accepted by the proxy's own config parser; other probes are left alone; the injected pod stays schema-valid.
import { parse as parseYaml } from 'yaml';
import { describe, expect, test } from 'vitest';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { applyAdditions, jsonPatchFor } from '../../../../control-plane/src/injector/pod-patch.js';
import { rewriteProbes } from '../../../../control-plane/src/injector/probe-rewrite.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';

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

  test('a pod without rewritable probes gets no appProbes key', async () => {
    const plan = planInjection({ pod: appPod() }, await testContext());
    if (plan.action !== 'inject') throw new Error(plan.reason);
    expect(parseYaml(plan.additions.annotations['tessera.dev/proxy-config']!).admin).toEqual({ listen: '0.0.0.0:15000' });
    expect(plan.additions.appContainers[0]!.probes).toBeUndefined();
  });
});
