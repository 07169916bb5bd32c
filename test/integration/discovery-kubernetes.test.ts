// The Kubernetes endpoint source against an API server on loopback: real HTTPS with the cluster CA and a bearer
// token read from its file, paginated lists, watches streamed as chunked JSON lines (ADDED, MODIFIED, DELETED,
// BOOKMARK), 410 Gone forcing a re-list (as an in-stream ERROR event and as an HTTP status), a refused bearer, and
// stop(). No cluster is reachable here: test/helpers/fake-kube-api.ts answers list and watch the way kube-apiserver
// does (resourceVersion bookkeeping, history compaction), for the two collections the source reads.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { defaultsOf } from '../../common/config/validate-yaml.js';
import type { ServiceEndpoint } from '../../common/routing/service-endpoint.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import type { SkippedCounts } from '../../control-plane/src/discovery/endpoint-slice-view.js';
import type { SourceView } from '../../control-plane/src/discovery/endpoint-source.js';
import { KUBERNETES_DISCOVERY_SCHEMA, type KubernetesDiscoveryInput, resolveKubernetesDiscovery } from '../../control-plane/src/discovery/kubernetes-config.js';
import { KubernetesEndpointsSource } from '../../control-plane/src/discovery/kubernetes-endpoints-source.js';
import { FakeApiServer, pod, slice, startFakeKubeApi } from '../helpers/fake-kube-api.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const TOKEN = 'discovery-sa-token-v1';
const TD = TrustDomain.parse('mesh.test');

let dir: string;
let cleanup: () => Promise<void>;
let server: Awaited<ReturnType<typeof startFakeKubeApi>>;
let api: FakeApiServer;
let base: string;
const sources: KubernetesEndpointsSource[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  api = new FakeApiServer(TOKEN);
  server = await startFakeKubeApi(dir, api);
  base = server.base;
}, 30_000);

afterEach(() => {
  for (const s of sources.splice(0)) s.stop();
});

afterAll(async () => {
  server?.close();
  await cleanup?.();
});

interface Started {
  source: KubernetesEndpointsSource;
  views: SourceView[];
  logs: { level: string; obj: Record<string, unknown>; msg: string }[];
  last: () => SourceView | undefined;
}

async function startSource(token = TOKEN, extra: { namespaces?: string[]; inboundPort?: number } = {}, onSkipped?: (skipped: SkippedCounts) => void): Promise<Started> {
  await writeFile(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
  const config = resolveKubernetesDiscovery({ ...defaultsOf<KubernetesDiscoveryInput>(KUBERNETES_DISCOVERY_SCHEMA), enabled: true, apiServer: base, tokenFile: 'token', caFile: 'ca.crt', debounce: 20, ...extra }, dir, {})!;
  const logs: Started['logs'] = [];
  const log = (level: string) => (obj: Record<string, unknown>, msg: string) => void logs.push({ level, obj, msg });
  const source = new KubernetesEndpointsSource({ config, trustDomain: TD, log: { info: log('info'), warn: log('warn'), error: log('error') }, api: { pageSize: 2 }, backoff: { initialMs: 50, maxMs: 300 }, ...(onSkipped ? { onSkipped } : {}) });
  sources.push(source);
  const views: SourceView[] = [];
  source.start((v) => views.push(v));
  return { source, views, logs, last: () => views.at(-1) };
}

function summary(view: SourceView | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, eps] of view ?? []) out[name] = eps.map((e: ServiceEndpoint) => `${e.host}:${e.port} ${e.spiffeId.replace('spiffe://mesh.test', '')} ${e.protocol} ${e.ready ? 'ready' : 'not-ready'}${e.zone ? ` ${e.zone}` : ''}`);
  return out;
}

function freshCluster(): FakeApiServer {
  const a = new FakeApiServer(TOKEN);
  server?.use(a);
  a.put('pods', pod('shop', 'api-1', 'api'));
  a.put('pods', pod('shop', 'api-2', 'api', { 'tessera.dev/inbound-port': '16006' }));
  a.put('pods', pod('shop', 'web-1', 'web'));
  a.put('pods', pod('other', 'db-1', 'db'));
  a.put('pods', pod('other', 'legacy-1', 'legacy', {})); // no sidecar: its service has no mesh endpoints
  a.put('endpointslices', slice('shop', 'api-x1', 'api', [{ ip: '10.1.0.1', pod: 'api-1', zone: 'z1' }, { ip: '10.1.0.2', pod: 'api-2', ready: false }]));
  a.put('endpointslices', slice('shop', 'web-x1', 'web', [{ ip: '10.1.1.1', pod: 'web-1' }], { name: 'grpc-web', port: 9090, protocol: 'TCP' }));
  a.put('endpointslices', slice('other', 'db-x1', 'db', [{ ip: '10.2.0.1', pod: 'db-1' }], { name: 'db', port: 5432, protocol: 'TCP', appProtocol: 'tcp' }));
  a.put('endpointslices', slice('other', 'legacy-x1', 'legacy', [{ ip: '10.2.1.1', pod: 'legacy-1' }]));
  return a;
}

test('initial list (paginated, cluster CA, bearer from the token file) gives one complete view', async () => {
  api = freshCluster();
  const s = await startSource();
  await until('the first view', () => s.views.length > 0);
  expect(summary(s.last())).toEqual({
    'api.shop': ['10.1.0.1:15006 /ns/shop/sa/api http ready z1', '10.1.0.2:16006 /ns/shop/sa/api http not-ready'],
    'db.other': ['10.2.0.1:15006 /ns/other/sa/db tcp ready'],
    'legacy.other': [],
    'web.shop': ['10.1.1.1:15006 /ns/shop/sa/web grpc ready'],
  });
  expect(s.views).toHaveLength(1); // not one per collection or per page
  expect(api.requests.every((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true);
  // Pagination: 5 pods at 2 per page, and only slices that belong to a Service.
  expect(api.requests.filter((r) => r.path === '/api/v1/pods' && !r.query.has('watch')).map((r) => r.query.get('continue'))).toEqual([null, '2', '4']);
  expect(api.requests.find((r) => r.path.endsWith('/endpointslices'))!.query.get('labelSelector')).toBe('kubernetes.io/service-name');
  expect(s.source.status()).toMatchObject({ synced: true, skipped: { unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, notMeshed: 1 } });
  expect(s.logs.filter((l) => l.level === 'warn')).toEqual([]); // a pod without a sidecar is no fault
});

// Audit 53c F3: the slice's port (the Service's target port) was dropped and every Service of a pod went to 15006.
test('a pod with tessera.dev/inbound-ports "8080,9090/grpc": each Service reaches the listener of its target port; an unmeshed port is left out, counted, logged once', async () => {
  const a = new FakeApiServer(TOKEN);
  server.use(a);
  api = a;
  const multi = { 'tessera.dev/injected': '0.1.0', 'tessera.dev/inbound-ports': '8080,9090/grpc' };
  a.put('pods', pod('shop', 'mp-1', 'api', multi));
  a.put('pods', pod('shop', 'mp-2', 'api', multi));
  const both = [{ ip: '10.1.0.1', pod: 'mp-1' }, { ip: '10.1.0.2', pod: 'mp-2' }];
  a.put('endpointslices', slice('shop', 'api-x', 'api', both, { name: 'http', port: 8080, protocol: 'TCP' }));
  a.put('endpointslices', slice('shop', 'admin-x', 'api-admin', both, { name: 'http-admin', port: 9090, protocol: 'TCP' }));
  a.put('endpointslices', slice('shop', 'grpc-x', 'b-grpc', both, { name: 'rpc', port: 9090, protocol: 'TCP', appProtocol: 'grpc' }));
  a.put('endpointslices', slice('shop', 'metrics-x', 'metrics', both, { name: 'http-metrics', port: 9100, protocol: 'TCP' }));
  const reported: SkippedCounts[] = [];
  const s = await startSource(TOKEN, {}, (k) => reported.push(k));
  await until('the first view', () => s.views.length > 0);
  expect(summary(s.last())).toEqual({
    'api-admin.shop': ['10.1.0.1:15007 /ns/shop/sa/api http ready', '10.1.0.2:15007 /ns/shop/sa/api http ready'],
    'api.shop': ['10.1.0.1:15006 /ns/shop/sa/api http ready', '10.1.0.2:15006 /ns/shop/sa/api http ready'],
    'b-grpc.shop': ['10.1.0.1:15007 /ns/shop/sa/api grpc ready', '10.1.0.2:15007 /ns/shop/sa/api grpc ready'],
    'metrics.shop': [],
  });
  expect(s.source.status().skipped).toEqual({ unknownPod: 0, noServiceAccount: 0, badInboundPort: 0, portNotMeshed: 2, notMeshed: 0 });
  expect(reported.at(-1)).toEqual(s.source.status().skipped);
  const named = () => s.logs.filter((l) => l.level === 'warn' && l.msg.includes('tessera.dev/inbound-ports'));
  expect(named().map((l) => l.obj['servicePorts'])).toEqual([['metrics.shop:9100']]);
  // A third replica: the view is computed again, the same unmeshed port is counted again but not logged again.
  a.put('pods', pod('shop', 'mp-3', 'api', multi));
  a.put('endpointslices', slice('shop', 'metrics-x', 'metrics', [...both, { ip: '10.1.0.3', pod: 'mp-3' }], { name: 'http-metrics', port: 9100, protocol: 'TCP' }));
  await until('the third is counted', () => s.source.status().skipped.portNotMeshed === 3);
  expect(named()).toHaveLength(1);
});

test('watch events ADDED, MODIFIED and DELETED change the view; changes that do not alter it report nothing', async () => {
  api = freshCluster();
  const s = await startSource();
  await until('the first view', () => s.views.length > 0);
  await until('both watches are open', () => api.watchers.size === 2);

  // A new replica: the slice lists it before its pod is known (left out, counted), then the pod arrives.
  api.put('endpointslices', slice('shop', 'api-x1', 'api', [{ ip: '10.1.0.1', pod: 'api-1', zone: 'z1' }, { ip: '10.1.0.2', pod: 'api-2', ready: false }, { ip: '10.1.0.3', pod: 'api-3' }]));
  await until('the unknown pod is counted', () => s.source.status().skipped.unknownPod === 1);
  api.put('pods', pod('shop', 'api-3', 'api'));
  await until('api-3 joins', () => (summary(s.last())['api.shop'] ?? []).length === 3);
  expect(summary(s.last())['api.shop']).toContain('10.1.0.3:15006 /ns/shop/sa/api http ready');

  // MODIFIED: api-1 terminating → not ready.
  api.put('endpointslices', slice('shop', 'api-x1', 'api', [{ ip: '10.1.0.1', pod: 'api-1', ready: false, terminating: true, zone: 'z1' }, { ip: '10.1.0.2', pod: 'api-2', ready: false }, { ip: '10.1.0.3', pod: 'api-3' }]));
  await until('api-1 not ready', () => (summary(s.last())['api.shop'] ?? []).includes('10.1.0.1:15006 /ns/shop/sa/api http not-ready z1'));

  // A pod status change that does not alter the view: no new view.
  const before = s.views.length;
  api.put('pods', { ...pod('shop', 'web-1', 'web'), status: { phase: 'Running', podIP: '10.1.1.1' } });
  api.put('endpointslices', slice('other', 'db-x9', 'db', [])); // an empty slice of a known service
  await new Promise((r) => setTimeout(r, 300));
  expect(s.views.length).toBe(before);

  // DELETED: the web service's only slice goes; the service is no longer in the view.
  api.remove('endpointslices', 'shop', 'web-x1');
  await until('web is gone', () => !s.last()!.has('web.shop'));
  expect([...s.last()!.keys()]).toEqual(['api.shop', 'db.other', 'legacy.other']);
});

test.each(['event', 'status'] as const)('410 Gone (as an %s) on a resumed watch forces a re-list that catches up with what the watch missed', async (goneAs) => {
  api = freshCluster();
  api.goneAs = goneAs;
  const s = await startSource();
  await until('the first view', () => s.views.length > 0);
  await until('both watches are open', () => api.watchers.size === 2);
  const lists = api.lists('endpointslices');
  // Changes the watch never streams (quiet), then compaction: the resumed watch's version is too old.
  api.put('pods', pod('shop', 'api-9', 'api'), true);
  api.put('endpointslices', slice('shop', 'api-x2', 'api', [{ ip: '10.1.0.9', pod: 'api-9' }]), true);
  api.remove('endpointslices', 'other', 'db-x1', true);
  api.compactAndCut();
  await until('the re-listed view', () => (summary(s.last())['api.shop'] ?? []).length === 3 && !s.last()!.has('db.other'));
  expect(api.lists('endpointslices')).toBe(lists + 1);
  expect(summary(s.last())['api.shop']).toContain('10.1.0.9:15006 /ns/shop/sa/api http ready');
  // The re-list resumes watching from its own version.
  await until('both watches are open again', () => api.watchers.size === 2);
  api.put('pods', pod('shop', 'api-10', 'api'));
  api.put('endpointslices', slice('shop', 'api-x3', 'api', [{ ip: '10.1.0.10', pod: 'api-10' }]));
  await until('a streamed change after the re-list', () => (summary(s.last())['api.shop'] ?? []).length === 4);
  // A Gone is the protocol at work, not an API failure to report.
  expect(s.logs.filter((l) => l.level === 'warn' && /API call failed/.test(l.msg))).toEqual([]);
});

test('a watch the server ends is resumed from the last version seen, without a re-list; what happened meanwhile arrives', async () => {
  api = freshCluster();
  const s = await startSource();
  await until('both watches are open', () => api.watchers.size === 2 && s.views.length > 0);
  const lists = api.lists('endpointslices') + api.lists('pods');
  const watches = api.requests.filter((r) => r.query.has('watch')).length;
  api.cut();
  api.put('pods', pod('shop', 'api-5', 'api'));
  api.put('endpointslices', slice('shop', 'api-x5', 'api', [{ ip: '10.1.0.5', pod: 'api-5' }]));
  await until('api-5 joins', () => (summary(s.last())['api.shop'] ?? []).length === 3);
  expect(api.lists('endpointslices') + api.lists('pods')).toBe(lists);
  const resumed = api.requests.filter((r) => r.query.has('watch')).slice(watches);
  expect(resumed.length).toBeGreaterThanOrEqual(2);
  // Resumed from a version the server had already sent (the bookmark's or the last event's), not from zero.
  for (const r of resumed) expect(Number(r.query.get('resourceVersion'))).toBeGreaterThan(100);
});

test('a refused bearer: no view, the failure is logged without the token and retried; the rotated token is read on reconnect', async () => {
  api = freshCluster();
  api.token = 'the-rotated-token';
  const s = await startSource('an-expired-token');
  await until('two refused attempts', () => api.requests.filter((r) => r.auth === 'Bearer an-expired-token').length >= 4);
  expect(s.views).toEqual([]);
  expect(s.source.status().synced).toBe(false);
  expect(s.source.status().lastError).toMatch(/HTTP 401: Unauthorized/);
  const warned = s.logs.filter((l) => l.level === 'warn');
  expect(warned.length).toBeGreaterThan(0);
  expect(JSON.stringify(s.logs)).not.toContain('an-expired-token');
  expect(JSON.stringify(warned[0]!.obj)).toContain('TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
  // The projected token is rotated in its file: the next attempt uses it.
  await writeFile(join(dir, 'token'), 'the-rotated-token');
  await until('the view after rotation', () => s.views.length > 0);
  expect(Object.keys(summary(s.last()))).toEqual(['api.shop', 'db.other', 'legacy.other', 'web.shop']);
  expect(JSON.stringify(s.logs)).not.toContain('the-rotated-token');
  api.token = TOKEN;
});

test('configured namespaces are watched each on its own, and nothing else is seen', async () => {
  api = freshCluster();
  const s = await startSource(TOKEN, { namespaces: ['other'] });
  await until('the first view', () => s.views.length > 0);
  expect([...s.last()!.keys()]).toEqual(['db.other', 'legacy.other']);
  // This source's requests (its bearer): one the previous test's source had already sent when it was stopped can
  // still reach the shared fake server after it swapped clusters (a CI run saw a third, cluster-wide path).
  const own = api.requests.filter((r) => r.auth === `Bearer ${TOKEN}`);
  expect(new Set(own.map((r) => r.path))).toEqual(new Set(['/api/v1/namespaces/other/pods', '/apis/discovery.k8s.io/v1/namespaces/other/endpointslices']));
  api.put('pods', pod('shop', 'api-7', 'api'));
  api.put('endpointslices', slice('shop', 'api-x7', 'api', [{ ip: '10.1.0.7', pod: 'api-7' }]));
  api.put('pods', pod('other', 'db-2', 'db'));
  api.put('endpointslices', slice('other', 'db-x1', 'db', [{ ip: '10.2.0.1', pod: 'db-1' }, { ip: '10.2.0.2', pod: 'db-2' }], { name: 'db', port: 5432, protocol: 'TCP', appProtocol: 'tcp' }));
  await until('db-2 joins', () => (s.last()!.get('db.other') ?? []).length === 2);
  expect([...s.last()!.keys()]).toEqual(['db.other', 'legacy.other']);
});

test('stop() ends the watches and no view follows', async () => {
  api = freshCluster();
  const s = await startSource();
  await until('the first view', () => s.views.length > 0);
  await until('both watches are open', () => api.watchers.size === 2);
  s.source.stop();
  await until('the watches are closed', () => api.watchers.size === 0, 5_000);
  const seen = s.views.length;
  const requests = api.requests.length;
  api.put('pods', pod('shop', 'api-8', 'api'));
  api.put('endpointslices', slice('shop', 'api-x8', 'api', [{ ip: '10.1.0.8', pod: 'api-8' }]));
  api.compactAndCut();
  await new Promise((r) => setTimeout(r, 500));
  expect(s.views.length).toBe(seen);
  expect(api.requests.length).toBe(requests);
});
