// The forward-proxy option: tessera.dev/http-proxy adds the outbound listener `mesh` (mode: http-proxy, loopback
// 15080) to the injected proxy config, which the real proxy config parser accepts, and HTTP_PROXY/http_proxy and
// NO_PROXY/no_proxy to every app container that does not set them itself; the patch and direct paths agree and
// the pod stays schema-valid; malformed values and a clashing listener name are refused with the annotation.
import { parse as parseYaml } from 'yaml';
import { describe, expect, test } from 'vitest';
import { planInjection } from '../../../../control-plane/src/injector/plan-injection.js';
import { SIDECAR_PATHS } from '../../../../control-plane/src/injector/proxy-config.js';
import { applyAdditions, jsonPatchFor } from '../../../../control-plane/src/injector/pod-patch.js';
import { NO_PROXY_HOSTS } from '../../../../control-plane/src/injector/sidecar.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { appPod, testContext } from '../../../helpers/injector-fixtures.js';
import { applyJsonPatch } from '../../../helpers/json-patch.js';
import { validateK8sObject } from '../../deploy/k8s-schema.js';

type Env = { name: string; value?: string }[];
interface InjectedPod {
  metadata: { annotations: Record<string, string> };
  spec: { containers: { name: string; env?: Env }[]; initContainers: { name: string; env?: Env }[] };
}

const PROXY_ENV: Env = [
  { name: 'HTTP_PROXY', value: 'http://127.0.0.1:15080' },
  { name: 'http_proxy', value: 'http://127.0.0.1:15080' },
  { name: 'NO_PROXY', value: NO_PROXY_HOSTS },
  { name: 'no_proxy', value: NO_PROXY_HOSTS },
];
const SOCKET_ENV = { name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///var/run/tessera/workload/workload.sock' };

/** The pod as the API server stores it after the webhook's patch; checked against the direct path. */
async function inject(pod: Record<string, unknown>): Promise<InjectedPod> {
  const plan = planInjection({ pod }, await testContext());
  if (plan.action !== 'inject') throw new Error(`expected inject, got ${plan.action}`);
  const patched = applyJsonPatch(pod, jsonPatchFor(plan.pod, plan.additions)) as unknown as InjectedPod;
  expect(patched).toEqual(applyAdditions(plan.pod, plan.additions));
  expect(validateK8sObject(patched).errors).toEqual([]);
  return patched;
}

function withAnnotations(annotations: Record<string, string>, edit: (pod: InjectedPod) => void = () => {}): Record<string, unknown> {
  const pod = appPod({ annotations });
  edit(pod as unknown as InjectedPod);
  return pod;
}

function parsed(pod: InjectedPod) {
  const yaml = pod.metadata.annotations['tessera.dev/proxy-config']!;
  return { doc: parseYaml(yaml) as { outbound?: Record<string, unknown>[] }, config: parseProxyConfig(yaml, SIDECAR_PATHS.configFile) };
}

describe('tessera.dev/http-proxy', () => {
  test('absent: no forward-proxy listener and no proxy variables', async () => {
    const pod = await inject(withAnnotations({ 'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/shop/sa/api@api.shop.svc:15006' }));
    expect(parsed(pod).doc.outbound!.map((o) => o['name'])).toEqual(['api']);
    expect(pod.spec.containers[0]!.env).toEqual([{ name: 'MODE', value: 'prod' }, SOCKET_ENV]);
  });

  test.each(['true', 'enabled', ' True '])('"%s": the outbound listener mesh on 127.0.0.1:15080 (mode: http-proxy), accepted by the proxy', async (v) => {
    const pod = await inject(withAnnotations({ 'tessera.dev/http-proxy': v, 'tessera.dev/outbound': 'api=spiffe://cluster.local/ns/shop/sa/api@api.shop.svc:15006' }));
    const { doc, config } = parsed(pod);
    expect(doc.outbound).toEqual([
      { name: 'api', listen: '127.0.0.1:15101', upstream: 'api.shop.svc:15006', spiffeId: 'spiffe://cluster.local/ns/shop/sa/api', protocol: 'http' },
      { name: 'mesh', listen: '127.0.0.1:15080', mode: 'http-proxy' },
    ]);
    const mesh = config.outbound.find((o) => o.name === 'mesh')!;
    expect(mesh.route).toEqual({ kind: 'http-proxy' });
    expect(`${mesh.listen.host}:${mesh.listen.port}`).toBe('127.0.0.1:15080');
    expect(config.outbound.find((o) => o.name === 'api')!.route.kind).toBe('static');
    // The variables go to the app containers only: not to the sidecar, not to plain init containers.
    expect(pod.spec.containers[0]!.env).toEqual([{ name: 'MODE', value: 'prod' }, SOCKET_ENV, ...PROXY_ENV]);
    for (const c of pod.spec.initContainers) expect((c.env ?? []).map((e) => e.name)).not.toContain('HTTP_PROXY');
  });

  test('the listener works with inbound ports too (the pod serves and calls)', async () => {
    const pod = await inject(withAnnotations({ 'tessera.dev/http-proxy': 'true', 'tessera.dev/inbound-ports': '8080' }));
    const doc = parseYaml(pod.metadata.annotations['tessera.dev/proxy-config']!) as { inbound: unknown[]; outbound: unknown[] };
    expect(doc.inbound).toEqual([{ name: 'app-8080', listen: '0.0.0.0:15006', forwardTo: '127.0.0.1:8080', protocol: 'http' }]);
    expect(doc.outbound).toEqual([{ name: 'mesh', listen: '127.0.0.1:15080', mode: 'http-proxy' }]);
  });

  test.each(['false', 'disabled', 'FALSE'])('"%s": nothing added', async (v) => {
    const pod = await inject(withAnnotations({ 'tessera.dev/http-proxy': v }));
    expect((parseYaml(pod.metadata.annotations['tessera.dev/proxy-config']!) as { outbound?: unknown }).outbound).toBeUndefined();
    expect(pod.spec.containers[0]!.env).toEqual([{ name: 'MODE', value: 'prod' }, SOCKET_ENV]);
  });

  test('every app container gets the variables, also one without any env (the list is created)', async () => {
    const pod = await inject(
      withAnnotations({ 'tessera.dev/http-proxy': 'true' }, (p) => {
        p.spec.containers.push({ name: 'worker', image: 'registry.example/worker:1' } as InjectedPod['spec']['containers'][number]);
      }),
    );
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['web', 'worker']);
    expect(pod.spec.containers[1]!.env).toEqual([SOCKET_ENV, ...PROXY_ENV]);
  });

  test.each([
    ['HTTP_PROXY', ['NO_PROXY', 'no_proxy']],
    ['http_proxy', ['NO_PROXY', 'no_proxy']],
    ['NO_PROXY', ['HTTP_PROXY', 'http_proxy']],
    ['no_proxy', ['HTTP_PROXY', 'http_proxy']],
  ])('a container that sets %s itself keeps it, and that pair is left to it', async (own, added) => {
    const pod = await inject(
      withAnnotations({ 'tessera.dev/http-proxy': 'true' }, (p) => {
        p.spec.containers[0]!.env!.push({ name: own, value: 'mine' });
      }),
    );
    const env = pod.spec.containers[0]!.env!;
    expect(env.filter((e) => /^(http|no)_proxy$/i.test(e.name)).map((e) => e.name)).toEqual([own, ...added]);
    expect(env.find((e) => e.name === own)!.value).toBe('mine');
  });

  test.each([
    [{ 'tessera.dev/http-proxy': 'yes' }, /tessera\.dev\/http-proxy: "yes" is not one of "true", "enabled", "false", "disabled"/],
    [{ 'tessera.dev/http-proxy': '' }, /tessera\.dev\/http-proxy/],
    [{ 'tessera.dev/http-proxy': 'true', 'tessera.dev/outbound': 'mesh=spiffe://cluster.local/ns/shop/sa/api@api.shop.svc:15006' }, /tessera\.dev\/http-proxy: the forward-proxy listener is named "mesh"/],
  ])('%j is refused, naming the annotation', async (annotations, message) => {
    const ctx = await testContext();
    expect(() => planInjection({ pod: appPod({ annotations }) }, ctx)).toThrowError(expect.objectContaining({ code: 'TESSERA_ERR_INJECT_BAD_ANNOTATION', message: expect.stringMatching(message) }));
  });

  test('a mesh entry in tessera.dev/outbound is fine without the forward proxy', async () => {
    const pod = await inject(withAnnotations({ 'tessera.dev/outbound': 'mesh=spiffe://cluster.local/ns/shop/sa/api@api.shop.svc:15006' }));
    expect(parsed(pod).doc.outbound!.map((o) => o['name'])).toEqual(['mesh']);
  });
});
