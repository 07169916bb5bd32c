// Kubernetes discovery end to end through the real `tessera control-plane` process: `discovery.kubernetes` points
// at an API server on loopback (test/helpers/fake-kube-api.ts: no cluster is reachable here), and a workload's
// Discovery/Watch over mTLS sees the pods behind a Service as endpoints with their SPIFFE IDs, then the changes.
// The control plane starts and serves while the API refuses its token, logs that without the token, and catches
// up once the rotated token is in the file. A replica that starts while the API's lists fail is not ready and holds
// back the first snapshot of a Watch until it has listed (a reconnecting proxy is not handed an empty service), for
// at most `syncTimeout`.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg } from '../../common/contract/discovery-v1.js';
import { type RunningControlPlane, TD, controlPlaneClients, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { FakeApiServer, pod, slice, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const GOOD = 'control-plane-sa-token-rotated';
const STALE = 'control-plane-sa-token-expired';
let dir: string;
let cleanup: () => Promise<void>;
let kube: Awaited<ReturnType<typeof startFakeKubeApi>>;
let api: FakeApiServer;
let cp: RunningControlPlane;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  api = new FakeApiServer(GOOD);
  api.put('pods', pod('shop', 'api-1', 'api'));
  api.put('pods', pod('shop', 'api-2', 'api'));
  api.put('endpointslices', slice('shop', 'api-x1', 'api', [{ ip: '10.1.0.1', pod: 'api-1', zone: 'z1' }, { ip: '10.1.0.2', pod: 'api-2' }], { name: 'grpc', port: 9090, protocol: 'TCP' }));
  kube = await startFakeKubeApi(dir, api);
  await writeFile(join(dir, 'token'), STALE);
  const config = await writeControlPlaneConfig(dir, `discovery:\n  kubernetes: { enabled: true, apiServer: "${kube.base}", tokenFile: token, caFile: ca.crt, namespaces: [shop], debounce: 50ms }`);
  cp = await startControlPlaneProcess(dir, config);
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  kube?.close();
  await cleanup?.();
});

test('the pods behind a Service reach a workload\'s Discovery/Watch, then each change; the token never reaches the log', async () => {
  // Started and serving although the API refuses the token; the failure is logged, coded, without the token.
  await until('a refused list', () => api.requests.some((r) => r.auth === `Bearer ${STALE}`), 15_000);
  await until('the failure logged', () => cp.stderr().includes('TESSERA_ERR_DISCOVERY_SOURCE_FAILED'), 15_000);
  expect(cp.stderr()).toMatch(/HTTP 401/);

  // The workload's SVID over SignSvid in-process: `token create` and `svid fetch` are not what this file is about.
  const bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  const c = controlPlaneClients(cp.grpc, bundlePem, await joinTokenSvid(cp, bundlePem, `spiffe://${TD}/ns/shop/sa/web`));
  const seen: DiscoveryUpdateMsg[] = [];
  const call = c.discovery.Watch!({ services: ['api.shop'], all: false }) as grpc.ClientReadableStream<DiscoveryUpdateMsg>;
  call.on('data', (m: DiscoveryUpdateMsg) => seen.push(m));
  call.on('error', () => {});
  const endpoints = () => {
    const last = [...seen].reverse().find((m) => m.services.some((s) => s.service === 'api.shop'));
    return (last?.services.find((s) => s.service === 'api.shop')?.endpoints ?? []).map((e) => `${e.address} ${e.spiffe_id} ${e.protocol} ${e.ready ? 'ready' : 'not-ready'} ${e.zone || '-'} ${e.source}`);
  };
  try {
    // The projected token is rotated in its file: the next attempt reads it.
    await writeFile(join(dir, 'token'), GOOD);
    await until('the endpoints from the cluster', () => endpoints().length === 2, 20_000, 50);
    expect(endpoints()).toEqual([`10.1.0.1:15006 spiffe://${TD}/ns/shop/sa/api grpc ready z1 kubernetes`, `10.1.0.2:15006 spiffe://${TD}/ns/shop/sa/api grpc ready - kubernetes`]);

    // A replica added and one terminating: both arrive as updates.
    api.put('pods', pod('shop', 'api-3', 'api-canary'));
    api.put('endpointslices', slice('shop', 'api-x1', 'api', [{ ip: '10.1.0.1', pod: 'api-1', zone: 'z1', ready: false, terminating: true }, { ip: '10.1.0.2', pod: 'api-2' }, { ip: '10.1.0.3', pod: 'api-3' }], { name: 'grpc', port: 9090, protocol: 'TCP' }));
    await until('the new replica and the terminating one', () => endpoints().length === 3 && endpoints()[0]!.includes('not-ready'), 20_000, 50);
    expect(endpoints()).toContain(`10.1.0.3:15006 spiffe://${TD}/ns/shop/sa/api-canary grpc ready - kubernetes`);
  } finally {
    call.cancel();
    c.close();
  }
  expect(cp.stderr()).not.toContain(STALE);
  expect(cp.stderr()).not.toContain(GOOD);
  expect(cp.stdout()).not.toContain(GOOD);
});

/** A second replica over its own data dir, started against the same API server (its lists failing, as the caller set). */
async function startReplica(name: string, extra: string): Promise<{ cp: RunningControlPlane; watch: () => { seen: DiscoveryUpdateMsg[]; close: () => void } }> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  await copyFile(join(dir, 'ca.crt'), join(d, 'ca.crt'));
  await writeFile(join(d, 'token'), GOOD);
  const config = await writeControlPlaneConfig(d, `discovery:\n  kubernetes: { enabled: true, apiServer: "${kube.base}", tokenFile: token, caFile: ca.crt, namespaces: [shop], debounce: 50ms${extra} }`);
  const replica = await startControlPlaneProcess(d, config);
  const bundle = await readFile(join(replica.dataDir, 'bundle.pem'), 'utf8');
  const svid = await joinTokenSvid(replica, bundle, `spiffe://${TD}/ns/shop/sa/web`);
  return {
    cp: replica,
    watch: () => {
      const c = controlPlaneClients(replica.grpc, bundle, svid);
      const seen: DiscoveryUpdateMsg[] = [];
      const call = c.discovery.Watch!({ services: ['api.shop'], all: false }) as grpc.ClientReadableStream<DiscoveryUpdateMsg>;
      call.on('data', (m: DiscoveryUpdateMsg) => seen.push(m));
      call.on('error', () => {});
      const close = () => {
        call.cancel();
        c.close();
      };
      return { seen, close };
    },
  };
}

const watchers = async (r: RunningControlPlane) => sumSeries(await (await fetch(`http://${r.admin}/metrics`)).text(), 'tessera_cp_discovery_watchers');
/** api.shop's addresses as the API server holds them now (the first test adds a replica). */
const inCluster = () => ((api.objects.endpointslices.get('shop/api-x1')?.['endpoints'] ?? []) as { addresses: string[] }[]).map((e) => `${e.addresses[0]}:15006`).sort();
const apiShop = (m: DiscoveryUpdateMsg | undefined) => (m?.services.find((s) => s.service === 'api.shop')?.endpoints ?? []).map((e) => e.address).sort();

// Audit 53c F2: a replica that had just started answered /ready 200 and sent the first snapshot at once, with
// api.shop empty, while its lists failed: every proxy reconnecting to it dropped its endpoints.
test('a replica started while the API lists fail: /ready 503 with the reason, and a Watch\'s first snapshot waits for the list', async () => {
  api.listsDown = true;
  const lists = api.requests.length;
  const { cp: replica, watch } = await startReplica('r1', '');
  const w = watch();
  try {
    await until('its lists were refused', () => api.requests.length > lists + 2, 15_000);
    await until('the stream is open on the replica', async () => (await watchers(replica)) === 1, 15_000);
    const ready = await fetch(`http://${replica.admin}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/^not ready: endpoint source kubernetes has not synced yet/);
    api.listsDown = false;
    await until('the first update', () => w.seen.length > 0, 20_000, 50);
    // The first update the proxy gets is the full snapshot, with the service's endpoints: never an empty service.
    expect(w.seen[0]!.full).toBe(true);
    expect(inCluster().length).toBeGreaterThan(0);
    expect(apiShop(w.seen[0])).toEqual(inCluster());
    await until('/ready 200 once synced', async () => (await fetch(`http://${replica.admin}/ready`)).status === 200, 15_000);
  } finally {
    api.listsDown = false;
    w.close();
    await replica.stop();
  }
}, 60_000);

test('the wait is bounded: past syncTimeout the stream gets what there is, /ready turns 200, and the log says so', async () => {
  api.listsDown = true;
  const { cp: replica, watch } = await startReplica('r2', ', syncTimeout: 1s');
  const w = watch();
  try {
    await until('the snapshot after the deadline', () => w.seen.length > 0, 20_000, 50);
    expect(w.seen[0]!.full).toBe(true);
    expect(apiShop(w.seen[0])).toEqual([]);
    expect(replica.stderr()).toMatch(/endpoint sources not synced by the deadline/);
    expect((await fetch(`http://${replica.admin}/ready`)).status).toBe(200);
    // The list succeeds later: the endpoints follow as an update.
    api.listsDown = false;
    await until('the endpoints after the list', () => apiShop(w.seen.at(-1)).join() === inCluster().join(), 20_000, 50);
  } finally {
    api.listsDown = false;
    w.close();
    await replica.stop();
  }
}, 60_000);
