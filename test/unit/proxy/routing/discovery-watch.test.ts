// DiscoveryWatch on hand-driven streams and fake timers: what it asks for, full then incremental, a refused
// update keeps the endpoints and reopens the stream after the backoff (the next full snapshot resynchronises),
// a stream must start full, and a lost stream keeps the last endpoints.
import { describe, expect, test } from 'vitest';
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg, EndpointMsg } from '../../../../common/contract/discovery-v1.js';
import type { OutboundConfig } from '../../../../proxy/src/config/proxy-config.js';
import type { IssuedSvid } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import type { StreamCallbacks } from '../../../../proxy/src/identity/reconnecting-stream.js';
import { DiscoveryWatch, type DiscoveryWatchEvent, watchedServicesOf } from '../../../../proxy/src/routing/discovery-watch.js';
import { MAX_SERVICES, ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const ep = (address: string): EndpointMsg => ({ address, spiffe_id: 'spiffe://example.org/ns/default/sa/api', protocol: 'http', ready: true, zone: '', weight: 0, source: 'self' });
const msg = (version: number, full: boolean, services: Record<string, EndpointMsg[]>): DiscoveryUpdateMsg => ({
  version: String(version),
  full,
  services: Object.entries(services).map(([service, endpoints]) => ({ service, endpoints })),
  generated_at_unix_ms: '0',
});

function harness(svid: IssuedSvid | null = {} as IssuedSvid) {
  const time = new FakeTime();
  const streams: { req: DiscoveryWatchRequestMsg; cb: StreamCallbacks<DiscoveryUpdateMsg>; cancelled: boolean }[] = [];
  const events: DiscoveryWatchEvent[] = [];
  const directory = new ServiceDirectory();
  const watch = new DiscoveryWatch({
    open: (_svid, req, cb) => {
      const s = { req, cb, cancelled: false };
      streams.push(s);
      return {
        cancel: () => {
          s.cancelled = true;
        },
      };
    },
    currentSvid: () => svid ?? undefined,
    directory,
    watched: { all: false, services: new Set(['web', 'api']) },
    onEvent: (e) => events.push(e),
    timers: time,
    backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
  });
  const addrs = (s: string) => directory.get(s)?.map((e) => `${e.host}:${e.port}`);
  return { time, streams, events, directory, watch, addrs };
}

const outbound = (route: OutboundConfig['route']) => ({ route });

describe('DiscoveryWatch', () => {
  test('asks for the services of service: listeners, or all when one listener is a forward proxy', () => {
    const svc = (service: string) => outbound({ kind: 'service', service });
    expect(watchedServicesOf([svc('b'), svc('a'), svc('a')])).toEqual({ all: false, services: new Set(['a', 'b']) });
    // A forward proxy asks for all; its service: listeners' names are kept first should the view pass the cap.
    expect(watchedServicesOf([svc('a'), outbound({ kind: 'http-proxy' })])).toEqual({ all: true, keep: new Set(['a']) });
    expect(watchedServicesOf([outbound({ kind: 'static' } as OutboundConfig['route'])])).toBeUndefined();
    const h = harness();
    h.watch.start();
    expect(h.streams[0]!.req).toEqual({ services: ['api', 'web'], all: false });
  });

  test('full then incremental; a lost stream keeps the endpoints and a reconnect resynchronises', async () => {
    const h = harness();
    h.watch.start();
    const first = h.watch.firstUpdate();
    expect(h.watch.connected).toBe(false);
    h.streams[0]!.cb.onMessage(msg(10, true, { api: [ep('127.0.0.2:1'), ep('127.0.0.3:1')] }));
    await first;
    expect(h.watch.connected).toBe(true);
    expect(h.addrs('api')).toEqual(['127.0.0.2:1', '127.0.0.3:1']);
    expect(h.addrs('web')).toEqual([]);
    h.streams[0]!.cb.onMessage(msg(11, false, { web: [ep('127.0.0.4:1')] }));
    expect(h.addrs('web')).toEqual(['127.0.0.4:1']);
    expect(h.addrs('api')).toHaveLength(2);

    h.streams[0]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.watch.connected).toBe(false);
    expect(h.addrs('api')).toHaveLength(2);
    h.time.advance(100);
    expect(h.streams).toHaveLength(2);
    // A restarted control plane: a higher version, the whole state.
    h.streams[1]!.cb.onMessage(msg(20, true, { api: [ep('127.0.0.3:1')] }));
    expect(h.addrs('api')).toEqual(['127.0.0.3:1']);
    expect(h.addrs('web')).toEqual([]);
    expect(h.events.map((e) => e.kind)).toEqual(['connected', 'applied', 'applied', 'disconnected', 'connected', 'applied']);
  });

  test('a refused update keeps the endpoints, is reported, and the stream reopens after a backoff that grows while refusals go on', () => {
    const h = harness();
    h.watch.start();
    h.streams[0]!.cb.onMessage(msg(10, true, { api: [ep('127.0.0.2:1')] }));
    h.streams[0]!.cb.onMessage(msg(11, false, { api: [ep('not an address')] }));
    expect(h.addrs('api')).toEqual(['127.0.0.2:1']);
    expect(h.streams[0]!.cancelled).toBe(true);
    expect(h.events.filter((e) => e.kind === 'refused')).toHaveLength(1);
    expect(h.events.at(-1)).toMatchObject({ kind: 'disconnected', retryInMs: 100 });
    // Late messages of the cancelled stream are dropped.
    h.streams[0]!.cb.onMessage(msg(12, false, { api: [] }));
    expect(h.addrs('api')).toEqual(['127.0.0.2:1']);
    h.time.advance(100);
    expect(h.streams).toHaveLength(2);
    // A stream that does not start with a full snapshot is refused too.
    h.streams[1]!.cb.onMessage(msg(12, false, { api: [] }));
    expect(h.addrs('api')).toEqual(['127.0.0.2:1']);
    expect(h.directory.refused).toBe(2);
    // The refused message did not reset the backoff: the next try waits twice as long (not 4 a second for ever).
    expect(h.events.at(-1)).toMatchObject({ kind: 'disconnected', retryInMs: 200 });
    h.time.advance(100);
    expect(h.streams).toHaveLength(2);
    h.time.advance(100);
    h.streams[2]!.cb.onMessage(msg(12, true, { api: [ep('127.0.0.5:1')] }));
    expect(h.addrs('api')).toEqual(['127.0.0.5:1']);
    // Taken: the next loss starts again from the first delay.
    h.streams[2]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.events.at(-1)).toMatchObject({ kind: 'disconnected', retryInMs: 100 });
  });

  test('refusal after refusal: the delay doubles up to its cap', () => {
    const h = harness();
    h.watch.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.streams[i]!.cb.onMessage(msg(1, false, { api: [] }));
      const last = h.events.at(-1);
      delays.push(last?.kind === 'disconnected' ? last.retryInMs : -1);
      h.time.advance(delays[i]!);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  test('a view of all services over the cap: the service: listeners\' services and what fits are kept, the stream stays open, over-cap reported', () => {
    const time = new FakeTime();
    const streams: { cb: StreamCallbacks<DiscoveryUpdateMsg>; cancelled: boolean }[] = [];
    const events: DiscoveryWatchEvent[] = [];
    const directory = new ServiceDirectory();
    const watch = new DiscoveryWatch({
      open: (_svid, _req, cb) => {
        const s = { cb, cancelled: false };
        streams.push(s);
        return {
          cancel: () => {
            s.cancelled = true;
          },
        };
      },
      currentSvid: () => ({}) as IssuedSvid,
      directory,
      watched: { all: true, keep: new Set(['zz-api']) },
      onEvent: (e) => events.push(e),
      timers: time,
      backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
    });
    watch.start();
    const flood: Record<string, EndpointMsg[]> = { 'zz-api': [ep('127.0.0.9:1')] };
    for (let i = 0; i < MAX_SERVICES + 124; i++) flood[`f${String(i).padStart(5, '0')}`] = [ep('127.0.0.2:1')];
    streams[0]!.cb.onMessage(msg(1, true, flood));
    expect(streams[0]!.cancelled).toBe(false);
    expect(watch.connected).toBe(true);
    expect(directory.names()).toHaveLength(MAX_SERVICES);
    expect(directory.get('zz-api')).toHaveLength(1);
    expect(directory.leftOut).toBe(125);
    expect(events.filter((e) => e.kind === 'refused' || e.kind === 'disconnected')).toEqual([]);
    expect(events.find((e) => e.kind === 'over-cap')).toEqual({ kind: 'over-cap', version: '1', leftOut: 125, kept: MAX_SERVICES });
    // Changes still arrive: the named service moves.
    streams[0]!.cb.onMessage(msg(2, false, { 'zz-api': [ep('127.0.0.9:2')] }));
    expect(directory.get('zz-api')?.map((e) => e.port)).toEqual([2]);
  });

  test('an older snapshot after a reconnect (a stale replica) is refused', () => {
    const h = harness();
    h.watch.start();
    h.streams[0]!.cb.onMessage(msg(10, true, { api: [ep('127.0.0.2:1')] }));
    h.streams[0]!.cb.onClose(new Error('UNAVAILABLE'));
    h.time.advance(100);
    h.streams[1]!.cb.onMessage(msg(9, true, { api: [] }));
    expect(h.addrs('api')).toEqual(['127.0.0.2:1']);
    expect(h.directory.version).toBe('10');
    expect(h.events.find((e) => e.kind === 'refused')).toMatchObject({ version: '9', error: expect.stringMatching(/TESSERA_ERR_DISCOVERY_BAD_UPDATE: version 9 is older than the applied 10/) });
  });

  test('restart (SVID rotation) opens a new stream at once and ignores the old one', () => {
    const h = harness();
    h.watch.start();
    h.streams[0]!.cb.onMessage(msg(10, true, { api: [ep('127.0.0.2:1')] }));
    h.watch.restart();
    expect(h.streams).toHaveLength(2);
    expect(h.streams[0]!.cancelled).toBe(true);
    h.streams[0]!.cb.onClose(new Error('CANCELLED'));
    expect(h.time.pending).toBe(0);
    h.streams[1]!.cb.onMessage(msg(10, true, { api: [ep('127.0.0.2:1')] }));
    expect(h.watch.connected).toBe(true);
    h.watch.stop();
    expect(h.streams[1]!.cancelled).toBe(true);
    expect(h.watch.connected).toBe(false);
  });

  test('without an SVID yet, opening is retried with backoff', () => {
    const h = harness(null);
    h.watch.start();
    expect(h.streams).toHaveLength(0);
    expect(h.events[0]).toMatchObject({ kind: 'disconnected', error: expect.stringMatching(/TESSERA_ERR_DISCOVERY_NO_SVID/) });
  });
});
