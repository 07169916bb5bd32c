// Kubernetes discovery end to end through the real `tessera control-plane` process: `discovery.kubernetes` points
// at an API server on loopback (test/helpers/fake-kube-api.ts: no cluster is reachable here), and a workload's
// Discovery/Watch over mTLS sees the pods behind a Service as endpoints with their SPIFFE IDs, then the changes.
// The control plane starts and serves while the API refuses its token, logs that without the token, and catches
// up once the rotated token is in the file.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg } from '../../common/contract/discovery-v1.js';
import { type RunningControlPlane, TD, controlPlaneClients, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { FakeApiServer, pod, slice, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { makeTempDir, tessera } from '../helpers/run.js';
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

  const tok = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', `spiffe://${TD}/ns/shop/sa/web`]);
  const out = join(dir, 'web');
  const f = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', tok.stdout.trim(), '--out', out]);
  expect(f.code, f.stderr).toBe(0);
  const c = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'), { keyPem: await readFile(join(out, 'key.pem'), 'utf8'), chainPem: await readFile(join(out, 'svid.pem'), 'utf8') });
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
