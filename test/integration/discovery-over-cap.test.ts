// A registry larger than a proxy keeps, end to end with real processes (audit 54a F1, F4): the real control plane
// with a Kubernetes source (test/helpers/fake-kube-api.ts) and `discovery.maxServices: 100`, a real `api` replica
// behind its proxy, and a forward-proxy sidecar `web` (a `service: api` listener and a `mode: http-proxy` one).
// Self-registration is bounded: names per SPIFFE ID (TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES) and in total
// (TESSERA_ERR_DISCOVERY_REGISTRY_FULL), counted, nothing registered dropped. Then 5,100 Kubernetes services push
// the registry past the proxy's 5,000: `web`, started then, is ready, keeps `api` (its own listener's) and routes
// it through both listeners, says so (TESSERA_ERR_DISCOVERY_OVER_CAP, tessera_discovery_services_left_out) and
// stays connected: no refused update, no reconnect loop. Before: every update refused whole, the stream reopened
// ~4 times a second, `web` never ready and every listener 503 no_endpoints. And `api.svc` is `api` in namespace
// `svc` (unknown here: 503 unknown_service), not the default namespace's `api`.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { EndpointMsg, RegisterResponseMsg } from '../../common/contract/discovery-v1.js';
import { type RunningControlPlane, TD, controlPlaneClients, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { FakeApiServer, type FakeKubeApi, pod, slice, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { API_ID, ReplicaApp, WEB_ID } from '../helpers/mesh-replicas.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const TOKEN = 'control-plane-sa-token';
const FLOOD = `spiffe://${TD}/ns/default/sa/flood`;
const FLOOD2 = `spiffe://${TD}/ns/default/sa/flood2`;
const K8S_SERVICES = 5_100;
let dir: string;
let cleanup: () => Promise<void>;
let kubeApi: FakeApiServer;
let kube: FakeKubeApi;
let cp: RunningControlPlane;
let bundlePem: string;
let app: ReplicaApp;
let replica: ProxyProcess;
const procs: ProxyProcess[] = [];

const cpMetrics = async () => (await fetch(`http://${cp.admin}/metrics`)).text();
const registryNames = async () => Object.keys((await (await fetch(`http://${cp.admin}/endpoints`)).json()) as Record<string, unknown>);
const ep = (address: string, spiffe_id: string): Partial<EndpointMsg> => ({ address, spiffe_id, protocol: 'http', ready: true });

/** Register calls as `id`; `send` writes a complete set on call `k` and waits for its answer. */
async function registrant(id: string) {
  const c = controlPlaneClients(cp.grpc, bundlePem, await joinTokenSvid(cp, bundlePem, id));
  const calls: grpc.ClientDuplexStream<unknown, RegisterResponseMsg>[] = [];
  return {
    async send(k: number, regs: { service: string; endpoint: Partial<EndpointMsg> }[]): Promise<RegisterResponseMsg> {
      calls[k] ??= c.discovery.Register!() as grpc.ClientDuplexStream<unknown, RegisterResponseMsg>;
      const call = calls[k];
      const answer = new Promise<RegisterResponseMsg>((ok, fail) => {
        call.once('data', ok);
        call.once('error', fail);
      });
      call.write({ registrations: regs });
      return answer;
    },
    close() {
      for (const call of calls) call.end();
      setTimeout(() => c.close(), 500);
    },
  };
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  kubeApi = new FakeApiServer(TOKEN);
  kubeApi.put('pods', pod('bulk', 'bulk-1', 'bulk'));
  kube = await startFakeKubeApi(dir, kubeApi);
  await writeFile(join(dir, 'token'), TOKEN);
  // flood may serve 100 listed names, flood2 50: more than the per-ID bound (64) and, together, than the total (100).
  const listed = [...names('flood', 100).map((n) => `${n}: [${FLOOD}]`), ...names('flood2', 50).map((n) => `${n}: [${FLOOD2}]`)].join(', ');
  const config = await writeControlPlaneConfig(
    dir,
    `discovery:\n  maxServices: 100\n  serviceIdentities: { ${listed} }\n  kubernetes: { enabled: true, apiServer: "${kube.base}", tokenFile: token, caFile: ca.crt, namespaces: [bulk], debounce: 100ms }`,
  );
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API_ID}\n  action: ALLOW\n  rules:\n    - from: [${WEB_ID}]\n`,
  );
  cp = await startControlPlaneProcess(dir, config);
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  app = await ReplicaApp.start('r0');
  replica = await startAttestedProxy(cp, dir, 'api', API_ID, `inbound:\n  - { name: app, listen: 127.0.0.2:0, forwardTo: 127.0.0.1:${app.port}, service: api }\n`);
  await until('api registered', async () => (await registryNames()).includes('api'), 20_000, 50);
}, 60_000);

afterAll(async () => {
  await Promise.all([...procs, replica].filter(Boolean).map((p) => p.stop()));
  await cp?.stop();
  kube?.close();
  await app?.close();
  await cleanup?.();
});

test('self-registration is bounded per SPIFFE ID and in total, with coded, counted refusals; what is registered stays', async () => {
  const flood = await registrant(FLOOD);
  const flood2 = await registrant(FLOOD2);
  try {
    // 100 names over two calls of one ID: 64 names at most, the rest TOO_MANY_SERVICES.
    const a = await flood.send(0, names('flood', 50).map((s, i) => ({ service: s, endpoint: ep(`127.0.3.${i + 1}:15006`, FLOOD) })));
    const b = await flood.send(1, names('flood', 100).slice(50).map((s, i) => ({ service: s, endpoint: ep(`127.0.4.${i + 1}:15006`, FLOOD) })));
    expect(a.accepted).toHaveLength(50);
    expect(b.accepted).toHaveLength(14);
    expect(b.refused.map((r) => r.code)).toEqual(Array(36).fill('TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES'));
    // The registry now holds api + 64 = 65 of its 100: flood2's 50 new names, 35 fit, 15 REGISTRY_FULL.
    const regs2 = names('flood2', 50).map((s, i) => ({ service: s, endpoint: ep(`127.0.5.${i + 1}:15006`, FLOOD2) }));
    const c = await flood2.send(0, regs2);
    expect(c.accepted).toHaveLength(35);
    expect(c.refused.map((r) => r.code)).toEqual(Array(15).fill('TESSERA_ERR_DISCOVERY_REGISTRY_FULL'));
    await until('100 services registered', async () => (await registryNames()).length === 100, 10_000, 50);
    // A full registry refuses no name already held: the same set again (a readiness re-send) is taken whole.
    expect((await flood2.send(0, regs2.slice(0, 35))).refused).toEqual([]);
    const m = await cpMetrics();
    expect(sumSeries(m, 'tessera_cp_registrations_refused_total', { code: 'TESSERA_ERR_DISCOVERY_TOO_MANY_SERVICES' })).toBe(36);
    expect(sumSeries(m, 'tessera_cp_registrations_refused_total', { code: 'TESSERA_ERR_DISCOVERY_REGISTRY_FULL' })).toBe(15);
  } finally {
    flood.close();
    flood2.close();
  }
}, 60_000);

test('a registry over the proxy\'s cap: a forward-proxy sidecar is ready, keeps its own service and routes it, stays connected; api.svc is not api', async () => {
  // 5,100 Kubernetes services (the operator's word, not bounded by maxServices): the registry passes 5,000.
  for (let i = 0; i < K8S_SERVICES; i++) kubeApi.put('endpointslices', slice('bulk', `s${i}-x`, `s${i}`, [{ ip: `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, pod: 'bulk-1' }], { name: 'grpc', port: 9090, protocol: 'TCP' }));
  await until('the registry over 5,000 services', async () => (await registryNames()).length > 5_000, 60_000, 200);
  expect(await registryNames()).toContain('api');

  const web = await startAttestedProxy(cp, dir, 'web', WEB_ID, 'outbound:\n  - { name: api, listen: 127.0.0.1:0, service: api }\n  - { name: mesh, listen: 127.0.0.1:0, mode: http-proxy }\n');
  procs.push(web);
  await until('web ready', async () => (await fetch(`http://127.0.0.1:${web.admin}/ready`)).status === 200, 30_000, 100).catch((e: Error) => {
    throw new Error(`${e.message}\nweb stderr: ${web.stderr().slice(-2000)}`);
  });
  const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code} %header{x-replica} %header{x-tessera-error}', ...args]);
  expect((await curl([`http://127.0.0.1:${web.ports.get('outbound/api')}/x`])).stdout).toBe('200 r0 ');
  const proxy = `http://127.0.0.1:${web.ports.get('outbound/mesh')}`;
  expect((await curl(['-x', proxy, 'http://api/x'])).stdout).toBe('200 r0 ');
  // kube-dns and the control plane read api.svc as api in namespace svc: not registered here, so not routed.
  for (const host of ['api.svc', 'api.svc.cluster.local']) expect((await curl(['-x', proxy, `http://${host}/x`])).stdout, host).toBe('503  unknown_service');

  const m = await metricsText(web.admin);
  expect(sumSeries(m, 'tessera_discovery_connected')).toBe(1);
  expect(sumSeries(m, 'tessera_discovery_updates_total', { result: 'refused' })).toBe(0);
  expect(sumSeries(m, 'tessera_discovery_services_left_out')).toBeGreaterThan(0);
  expect(web.stderr()).toContain('TESSERA_ERR_DISCOVERY_OVER_CAP');
  expect(web.stderr()).not.toContain('discovery stream disconnected');
}, 120_000);
