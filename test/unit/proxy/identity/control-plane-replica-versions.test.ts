// Versions across control-plane replicas: each replica numbers its Config/Watch snapshots and Discovery updates
// itself, so after a failover (or failback) the first complete state of the new replica is taken whatever its
// number, while on one replica an older version is still refused. And the streams reconnect after the shared
// endpoints' full-jitter delay.
import { describe, expect, test } from 'vitest';
import type { ConfigSnapshotMsg } from '../../../../common/contract/config-v1.js';
import type { DiscoveryUpdateMsg, EndpointMsg } from '../../../../common/contract/discovery-v1.js';
import { policyToJson } from '../../../../common/policy/parse-policy.js';
import { ConfigWatch, type ConfigWatchEvent } from '../../../../proxy/src/identity/config-watch-client.js';
import { ControlPlaneEndpoints } from '../../../../proxy/src/identity/control-plane-endpoints.js';
import type { IssuedSvid } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import type { StreamCallbacks } from '../../../../proxy/src/identity/reconnecting-stream.js';
import { DiscoveryWatch, type DiscoveryWatchEvent } from '../../../../proxy/src/routing/discovery-watch.js';
import { ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';

const policy = (name: string) => ({ name, selector: 'spiffe://example.org/**', action: 'ALLOW' as const, mode: 'enforce' as const, rules: [{ from: ['spiffe://example.org/**'] }] });

function snapshot(version: string, ca: TestCa, policyName = 'p'): ConfigSnapshotMsg {
  return {
    version,
    bundles: [{ trust_domain: ca.trustDomain, x509_authorities: [ca.root.cert.raw] }],
    policies: [{ name: policyName, json: policyToJson(policy(policyName)) }],
    break_glass: [],
    generated_at_unix_ms: '1',
  };
}

/** A stream "to" whichever address the test sets, like ControlPlaneClient's handles. */
function streams<T>() {
  const opened: { address: string; cb: StreamCallbacks<T> }[] = [];
  let address = 'cp1:8443';
  return {
    opened,
    at: (a: string) => {
      address = a;
    },
    open: (cb: StreamCallbacks<T>) => {
      opened.push({ address, cb });
      return { address, cancel: () => {} };
    },
  };
}

describe('Config/Watch across replicas', () => {
  test('the first snapshot of another replica is applied whatever its version; an older one from the same replica is not', async () => {
    const ca = await TestCa.create();
    const time = new FakeTime();
    const s = streams<ConfigSnapshotMsg>();
    const applied: string[] = [];
    const events: ConfigWatchEvent[] = [];
    const w = new ConfigWatch({
      open: (_svid, cb) => s.open(cb),
      currentSvid: () => ({ serial: 'aa' }) as unknown as IssuedSvid,
      apply: (u) => void applied.push(`${u.version}:${[...u.policies.policies].map((p) => p.name).join()}`),
      onEvent: (e) => events.push(e),
      timers: time,
      retryDelayMs: () => 10,
    });
    w.start();
    s.opened[0]!.cb.onMessage(snapshot('40', ca, 'one'));
    expect(w.version).toBe('40');
    // cp1 goes away; the stream reopens on cp2, whose counter is far behind.
    s.at('cp2:8443');
    s.opened[0]!.cb.onClose();
    time.advance(10);
    expect(s.opened[1]!.address).toBe('cp2:8443');
    s.opened[1]!.cb.onMessage(snapshot('3', ca, 'two'));
    expect(w.version).toBe('3');
    s.opened[1]!.cb.onMessage(snapshot('2', ca, 'stale')); // older on the same replica: refused
    s.opened[1]!.cb.onMessage(snapshot('3', ca, 'same')); // repeated: nothing to do
    s.opened[1]!.cb.onMessage(snapshot('4', ca, 'three'));
    // Failback to cp1, which moved on meanwhile.
    s.at('cp1:8443');
    s.opened[1]!.cb.onClose();
    time.advance(10);
    s.opened[2]!.cb.onMessage(snapshot('41', ca, 'four'));
    expect(applied).toEqual(['40:one', '3:two', '4:three', '41:four']);
    expect(events.filter((e) => e.kind === 'refused').map((e) => e.version)).toEqual(['2']);
    w.stop();
  });

  test('the reconnect waits the delay the endpoints give for each attempt', () => {
    const time = new FakeTime();
    const s = streams<ConfigSnapshotMsg>();
    const endpoints = new ControlPlaneEndpoints({ addresses: ['10.0.0.1:1', '10.0.0.2:1'], clock: time, random: () => 0.5, backoff: { initialMs: 100, maxMs: 1_000 } });
    const delays: number[] = [];
    const w = new ConfigWatch({
      open: (_svid, cb) => s.open(cb),
      currentSvid: () => ({ serial: 'aa' }) as unknown as IssuedSvid,
      apply: () => {},
      onEvent: (e) => {
        if (e.kind === 'disconnected') delays.push(e.retryInMs);
      },
      timers: time,
      retryDelayMs: (attempt) => endpoints.retryDelayMs(attempt),
    });
    w.start();
    for (let i = 0; i < 5; i++) {
      s.opened.at(-1)!.cb.onClose(new Error('UNAVAILABLE'));
      time.advance(1_000);
    }
    // random 0.5 × min(1000, 100·2^attempt)
    expect(delays).toEqual([50, 100, 200, 400, 500]);
    w.stop();
  });
});

const ep = (address: string): EndpointMsg => ({ address, spiffe_id: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 0, source: 'self' });
const update = (version: number, full: boolean, api: string[]): DiscoveryUpdateMsg => ({ version: String(version), full, services: [{ service: 'api', endpoints: api.map(ep) }], generated_at_unix_ms: '0' });

describe('Discovery/Watch across replicas', () => {
  test("another replica's full update replaces the endpoints whatever its version; an older one on the same replica is refused", () => {
    const time = new FakeTime();
    const s = streams<DiscoveryUpdateMsg>();
    const directory = new ServiceDirectory();
    const events: DiscoveryWatchEvent[] = [];
    const watch = new DiscoveryWatch({
      open: (_svid, _req, cb) => s.open(cb),
      currentSvid: () => ({}) as IssuedSvid,
      directory,
      watched: { all: false, services: new Set(['api']) },
      onEvent: (e) => events.push(e),
      timers: time,
      retryDelayMs: () => 10,
    });
    const api = () => directory.get('api')?.map((e) => `${e.host}:${e.port}`);
    watch.start();
    s.opened[0]!.cb.onMessage(update(90, true, ['127.0.0.2:1', '127.0.0.3:1']));
    s.at('cp2:8443');
    s.opened[0]!.cb.onClose(new Error('UNAVAILABLE'));
    time.advance(10);
    s.opened[1]!.cb.onMessage(update(5, true, ['127.0.0.3:1']));
    expect(api()).toEqual(['127.0.0.3:1']);
    expect(directory.version).toBe('5');
    s.opened[1]!.cb.onMessage(update(6, false, ['127.0.0.3:1', '127.0.0.4:1']));
    expect(api()).toEqual(['127.0.0.3:1', '127.0.0.4:1']);
    // A reconnect to the same replica with an older full update: refused, the endpoints stay.
    s.opened[1]!.cb.onClose(new Error('UNAVAILABLE'));
    time.advance(10);
    expect(s.opened[2]!.address).toBe('cp2:8443');
    s.opened[2]!.cb.onMessage(update(4, true, ['127.0.0.9:1']));
    expect(api()).toEqual(['127.0.0.3:1', '127.0.0.4:1']);
    expect(events.filter((e) => e.kind === 'refused')).toHaveLength(1);
    // An incremental update is never a base, from whichever replica.
    s.at('cp1:8443');
    time.advance(10);
    s.opened.at(-1)!.cb.onMessage(update(1, false, ['127.0.0.8:1']));
    expect(api()).toEqual(['127.0.0.3:1', '127.0.0.4:1']);
    watch.stop();
  });
});
