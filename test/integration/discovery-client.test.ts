// The proxy's discovery client (mesh-discovery.ts: ServiceDirectory + DiscoveryWatch + RegistrationClient over
// the real ControlPlaneClient) against a real grpc-js Discovery server over mTLS on loopback: full then
// incremental updates, a malformed update refused with a resync, the control plane restarted (endpoints kept
// meanwhile, caught up after), registrations sent, re-sent on readiness change and draining, withdrawn on stop,
// and both streams reopened with the new certificate after an SVID rotation.
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { systemClock } from '../../common/clock.js';
import type { EndpointMsg } from '../../common/contract/discovery-v1.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { parseProxyConfig } from '../../proxy/src/config/proxy-config.js';
import { ControlPlaneClient } from '../../proxy/src/identity/control-plane-client.js';
import type { IssuedSvid } from '../../proxy/src/identity/control-plane-svid-source.js';
import { IdentityStore } from '../../proxy/src/identity/identity-store.js';
import { createMeshDiscovery, type MeshDiscovery } from '../../proxy/src/routing/mesh-discovery.js';
import { createProxyRegistry, ProxyMetrics } from '../../proxy/src/telemetry/metrics.js';
import { DiscoveryTestServer } from '../helpers/discovery-test-server.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { issuedSvid } from '../helpers/issued-svid.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = TrustDomain.parse('example.org');
const MY_ID = 'spiffe://example.org/ns/default/sa/web';
const API_ID = 'spiffe://example.org/ns/default/sa/api';
const ep = (address: string, ready = true): EndpointMsg => ({ address, spiffe_id: API_ID, protocol: 'http', ready, zone: '', weight: 0, source: 'self' });

const CONFIG = `identity: { controlPlane: { address: 127.0.0.1:1, bundleFile: /dev/null, trustDomain: example.org, joinToken: t } }
inbound:
  - { name: app, listen: 127.0.0.2:0, forwardTo: 127.0.0.1:8080, service: web, zone: z1 }
outbound:
  - { name: api, listen: 127.0.0.1:0, service: api }
  - { name: cache, listen: 127.0.0.1:0, service: cache, protocol: tcp }
`;

interface Rig {
  readonly ca: TestCa;
  server: DiscoveryTestServer;
  readonly mesh: MeshDiscovery;
  readonly metrics: ProxyMetrics;
  readonly store: IdentityStore;
  readonly client: ControlPlaneClient;
  svid: IssuedSvid;
  ready: boolean;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.mesh.stop();
    r.client.close();
    await r.server.stop();
  }
});

async function rig(services: Record<string, EndpointMsg[]>): Promise<Rig> {
  const ca = await TestCa.create();
  const server = await DiscoveryTestServer.start(ca, { version: 100n, services: new Map(Object.entries(services)) });
  const bundles = new TrustBundleSet([TrustBundle.parse(TD, ca.bundlePem())]);
  const client = new ControlPlaneClient({ address: `127.0.0.1:${server.port}`, trustDomain: TD, bundles: () => bundles, clock: systemClock, deadlineClock: systemClock });
  const minted = await ca.mintSvid(MY_ID);
  const store = new IdentityStore(systemClock);
  store.update({ chain: minted.chain, key: minted.key, bundles, source: 'control-plane' });
  const metrics = new ProxyMetrics(createProxyRegistry());
  const config = parseProxyConfig(CONFIG, 'proxy.yaml');
  const r: Rig = {
    ca,
    server,
    metrics,
    store,
    client,
    svid: issuedSvid(minted, ca, MY_ID),
    ready: false,
    mesh: undefined as unknown as MeshDiscovery,
  };
  (r as { mesh: MeshDiscovery }).mesh = createMeshDiscovery({
    inbound: config.inbound,
    outbound: config.outbound,
    client,
    currentSvid: () => r.svid,
    identity: store,
    boundPort: (name) => (name === 'app' ? 41234 : undefined),
    ready: () => r.ready,
    metrics,
    log: pino({ level: 'silent' }),
    backoff: { initialMs: 100, maxMs: 400, jitter: 0.2 },
  });
  rigs.push(r);
  r.mesh.start();
  return r;
}

const addrs = (r: Rig, s: string) => r.mesh.directory.get(s)?.map((e) => `${e.host}:${e.port}`);
const metric = async (r: Rig, name: string, labels: Record<string, string> = {}) => sumSeries(await r.metrics.registry.metrics(), name, labels);

describe('discovery client against a real Discovery server over mTLS', () => {
  test('full snapshot, then incremental updates of the watched services only', async () => {
    const r = await rig({ api: [ep('127.0.0.2:15006'), ep('127.0.0.3:15006')], other: [ep('127.0.0.9:1')] });
    await r.mesh.watch!.firstUpdate();
    expect(r.server.watchCalls[0]!.req).toEqual({ services: ['api', 'cache'], all: false });
    expect(addrs(r, 'api')).toEqual(['127.0.0.2:15006', '127.0.0.3:15006']);
    expect(r.mesh.directory.get('api')![0]!.spiffeId).toBe(API_ID);
    expect(addrs(r, 'cache')).toEqual([]);
    expect(r.mesh.directory.get('other')).toBeUndefined();
    expect(r.mesh.directory.version).toBe('100');

    const changes: number[] = [];
    r.mesh.directory.subscribe('api', (l) => changes.push(l.length));
    r.server.setService('api', [ep('127.0.0.2:15006'), ep('127.0.0.3:15006'), ep('127.0.0.4:15006')]);
    r.server.setService('cache', [ep('127.0.0.5:6379')]);
    await until('the incremental updates arrive', () => addrs(r, 'cache')?.length === 1);
    expect(addrs(r, 'api')).toEqual(['127.0.0.2:15006', '127.0.0.3:15006', '127.0.0.4:15006']);
    expect(changes).toEqual([3]);
    expect(r.mesh.directory.version).toBe('102');
    expect(await metric(r, 'tessera_discovery_updates_total', { result: 'applied' })).toBe(3);
    expect(await metric(r, 'tessera_discovery_connected')).toBe(1);
  });

  test('a full snapshot larger than grpc-js\'s 4 MiB default message size arrives and is applied', async () => {
    // 20,000 endpoints with 63-character zones and long IDs: about 6 MiB on the wire.
    const long = (e: EndpointMsg, i: number) => ({ ...e, zone: 'z'.repeat(63), spiffe_id: `${API_ID}/${'x'.repeat(100)}${i}` });
    const big = (n: number) => Array.from({ length: 10_000 }, (_, i) => long(ep(`10.${n}.${i >> 8}.${i & 255}:15006`), i));
    const r = await rig({ api: big(1), cache: big(2) });
    await until('the big snapshot applied', () => r.mesh.directory.version !== undefined, 15_000);
    expect(r.mesh.directory.get('api')).toHaveLength(10_000);
    expect(r.mesh.directory.get('cache')).toHaveLength(10_000);
    r.server.setService('api', big(4).slice(0, 2));
    await until('an update after the big snapshot', () => r.mesh.directory.get('api')?.length === 2);
  });

  test('a malformed update is refused whole, the endpoints stay, and the stream resynchronises', async () => {
    const r = await rig({ api: [ep('127.0.0.2:15006')] });
    await r.mesh.watch!.firstUpdate();
    r.server.sendRaw({ version: '101', services: [{ service: 'api', endpoints: [ep('127.0.0.7:1'), { ...ep('127.0.0.8:1'), spiffe_id: 'not-an-id' }] }] });
    await until('the refusal is counted', async () => (await metric(r, 'tessera_discovery_updates_total', { result: 'refused' })) === 1);
    expect(addrs(r, 'api')).toEqual(['127.0.0.2:15006']);
    await until('the watch reopened', () => r.server.watchCalls.length === 2 && r.mesh.watch!.connected);
    r.server.setService('api', [ep('127.0.0.3:15006')]);
    await until('updates flow again', () => addrs(r, 'api')?.[0] === '127.0.0.3:15006');
  });

  test('control plane stopped: the last endpoints stay; restarted: the proxy catches up and registers again', async () => {
    const r = await rig({ api: [ep('127.0.0.2:15006'), ep('127.0.0.3:15006')] });
    await r.mesh.watch!.firstUpdate();
    await until('registered', () => r.server.registerCalls.length === 1 && r.server.registerCalls[0]!.requests.length === 1);
    const port = r.server.port;
    const state = r.server.services;
    await r.server.stop();
    await until('disconnected', async () => (await metric(r, 'tessera_discovery_connected')) === 0 && !r.mesh.watch!.connected);
    // Several reconnect attempts fail meanwhile; routing keeps the endpoints it had.
    await new Promise((ok) => setTimeout(ok, 1_000));
    expect(addrs(r, 'api')).toEqual(['127.0.0.2:15006', '127.0.0.3:15006']);

    state.set('api', [ep('127.0.0.3:15006'), ep('127.0.0.4:15006')]);
    r.server = await DiscoveryTestServer.start(r.ca, { port, version: 200n, services: state });
    await until('caught up with the restarted control plane', () => addrs(r, 'api')?.join() === '127.0.0.3:15006,127.0.0.4:15006', 15_000);
    expect(r.mesh.directory.version).toBe('200');
    await until('connected again', async () => (await metric(r, 'tessera_discovery_connected')) === 1);
    await until('registered again', () => r.server.registerCalls.length >= 1 && r.server.registerCalls.at(-1)!.requests.length >= 1, 15_000);
    expect(r.server.registerCalls.at(-1)!.requests[0]!.registrations.map((x) => x.endpoint!.address)).toEqual(['127.0.0.2:41234']);
  });

  test('registration: the listener\'s real address and own ID, re-sent on readiness change and draining, withdrawn on stop', async () => {
    const r = await rig({});
    await until('registered', () => r.server.registerCalls[0]?.requests.length === 1);
    const call = r.server.registerCalls[0]!;
    expect(call.peerId).toBe(MY_ID);
    expect(call.requests[0]).toEqual({
      registrations: [{ service: 'web', endpoint: { address: '127.0.0.2:41234', spiffe_id: MY_ID, protocol: 'http', ready: false, zone: 'z1', weight: 100, source: 'self' } }],
    });
    const readyOf = () => call.requests.map((q) => q.registrations[0]?.endpoint?.ready ?? 'withdrawn');

    r.ready = true;
    await until('ready=true sent after readiness changed', () => call.requests.length === 2, 5_000);
    expect(readyOf()).toEqual([false, true]);
    r.ready = false;
    r.mesh.refresh();
    await until('ready=false sent at once on refresh', () => call.requests.length === 3, 2_000);
    r.ready = true;
    r.mesh.refresh();
    await until('ready again', () => call.requests.length === 4, 2_000);

    // Draining: sent at once and awaited; while the server does not answer, setDraining returns after its bound.
    await r.mesh.setDraining();
    expect(readyOf()).toEqual([false, true, false, true, false]);
    r.server.silentRegister = true;
    const t0 = Date.now();
    await r.mesh.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(readyOf().at(-1)).toBe('withdrawn');
    await until('the call ended', () => call.ended);
  });

  test('an SVID rotation reopens both streams with the new certificate', async () => {
    const r = await rig({ api: [ep('127.0.0.2:15006')] });
    await r.mesh.watch!.firstUpdate();
    await until('registered', () => r.server.registerCalls.length === 1 && r.server.registerCalls[0]!.requests.length === 1);
    const first = r.server.watchCalls[0]!.peerSerial;
    const minted = await r.ca.mintSvid(MY_ID);
    r.svid = issuedSvid(minted, r.ca, MY_ID);
    r.store.update({ chain: minted.chain, key: minted.key, bundles: r.store.current!.bundles, source: 'control-plane' });
    await until('watch reopened', () => r.server.watchCalls.length === 2);
    await until('register reopened', () => r.server.registerCalls.length === 2 && r.server.registerCalls[1]!.requests.length === 1);
    expect(r.server.watchCalls[1]!.peerSerial).not.toBe(first);
    expect(r.server.watchCalls[1]!.peerSerial.toLowerCase()).toBe(minted.leaf.serialNumber.toLowerCase());
    expect(r.server.registerCalls[1]!.peerSerial.toLowerCase()).toBe(minted.leaf.serialNumber.toLowerCase());
    // A trust-bundle-only update (same SVID) reopens nothing.
    r.store.update({ chain: minted.chain, key: minted.key, bundles: r.store.current!.bundles, source: 'control-plane' });
    await new Promise((ok) => setTimeout(ok, 300));
    expect(r.server.watchCalls).toHaveLength(2);
    expect(addrs(r, 'api')).toEqual(['127.0.0.2:15006']);
  });
});
