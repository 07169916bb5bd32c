// ControlPlaneEndpoints, the one replica picker of every control-plane call: failover order, stale reports,
// full-jitter backoff bounds, background failback on an injected clock (nothing sleeps), and DNS names expanded to
// their records in a per-proxy order, re-resolved after failures at a bounded rate.
import { describe, expect, test } from 'vitest';
import { ControlPlaneEndpoints, type ControlPlaneEndpointsOptions, type EndpointSwitch } from '../../../../proxy/src/identity/control-plane-endpoints.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

function picker(addresses: string[], extra: Partial<ControlPlaneEndpointsOptions> = {}) {
  const time = new FakeTime();
  const switches: EndpointSwitch[] = [];
  const e = new ControlPlaneEndpoints({ addresses, clock: time, timers: time, random: () => 0.5, ...extra });
  e.subscribe((s) => switches.push(s));
  return { e, time, switches };
}

/** Lets the promise callbacks queued so far run (a probe's answer, a DNS answer). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('failover', () => {
  test('moves to the next address in the configured order, wrapping, and counts each move', () => {
    const { e, switches } = picker(['10.0.0.1:8443', '10.0.0.2:8443', '10.0.0.3:8443']);
    expect(e.current()).toBe('10.0.0.1:8443');
    expect(e.preferred()).toBe('10.0.0.1:8443');
    e.failed('10.0.0.1:8443', 'UNAVAILABLE: connect refused');
    expect(e.current()).toBe('10.0.0.2:8443');
    e.failed('10.0.0.2:8443');
    expect(e.current()).toBe('10.0.0.3:8443');
    e.failed('10.0.0.3:8443');
    expect(e.current()).toBe('10.0.0.1:8443');
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['10.0.0.1:8443', '10.0.0.2:8443', 'failover'],
      ['10.0.0.2:8443', '10.0.0.3:8443', 'failover'],
      ['10.0.0.3:8443', '10.0.0.1:8443', 'failover'],
    ]);
    expect(switches[0]!.error).toBe('UNAVAILABLE: connect refused');
    expect(e.state().failovers).toBe(3);
    expect(e.state().preferred).toBe('10.0.0.1:8443');
  });

  test('a failure reported for an address already left moves nothing (several streams fail on one replica at once)', () => {
    const { e, switches } = picker(['10.0.0.1:8443', '10.0.0.2:8443', '10.0.0.3:8443']);
    e.failed('10.0.0.1:8443'); // the config stream
    e.failed('10.0.0.1:8443'); // the discovery stream, same outage
    e.failed('10.0.0.1:8443'); // a renewal
    expect(e.current()).toBe('10.0.0.2:8443');
    expect(switches).toHaveLength(1);
    expect(e.state().failovers).toBe(1);
  });

  test('order(): the addresses one call tries, current first, then the ones after it', () => {
    const { e } = picker(['a.example:1', '10.0.0.2:1', '10.0.0.3:1']);
    expect(e.order()).toEqual(['a.example:1', '10.0.0.2:1', '10.0.0.3:1']);
    e.failed('a.example:1');
    expect(e.order()).toEqual(['10.0.0.2:1', '10.0.0.3:1', 'a.example:1']);
  });

  test('one address: failures never switch and count no failover', () => {
    const { e, switches } = picker(['10.0.0.1:8443']);
    for (let i = 0; i < 5; i++) e.failed('10.0.0.1:8443');
    expect(e.current()).toBe('10.0.0.1:8443');
    expect(switches).toEqual([]);
    expect(e.state()).toMatchObject({ failovers: 0, failbacks: 0, candidates: ['10.0.0.1:8443'] });
  });

  test('an IPv6 address keeps its brackets; a bad address or none is refused', () => {
    const { e } = picker(['[::1]:8443', '127.0.0.1:8443']);
    expect(e.current()).toBe('[::1]:8443');
    expect(() => new ControlPlaneEndpoints({ addresses: [], clock: new FakeTime() })).toThrow(RangeError);
    expect(() => new ControlPlaneEndpoints({ addresses: ['no-port'], clock: new FakeTime() })).toThrow(RangeError);
  });
});

describe('backoff with full jitter', () => {
  test('delay is random(0, min(max, initial·2^attempt)): the bounds at random 0 and just below 1', () => {
    const backoff = { initialMs: 100, maxMs: 3_000 };
    const low = new ControlPlaneEndpoints({ addresses: ['10.0.0.1:1'], clock: new FakeTime(), random: () => 0, backoff });
    const high = new ControlPlaneEndpoints({ addresses: ['10.0.0.1:1'], clock: new FakeTime(), random: () => 0.999999, backoff });
    const caps = [100, 200, 400, 800, 1_600, 3_000, 3_000, 3_000];
    caps.forEach((cap, attempt) => {
      expect(low.retryDelayMs(attempt)).toBe(0);
      expect(high.retryDelayMs(attempt)).toBe(cap - 1);
    });
    // A huge attempt number neither overflows nor passes the cap.
    expect(high.retryDelayMs(10_000)).toBe(2_999);
  });

  test('seeded: every delay within its bound, and spread over it (not a fixed fraction)', () => {
    const e = new ControlPlaneEndpoints({ addresses: ['10.0.0.1:1'], clock: new FakeTime(), random: seededRandom(7) });
    for (let attempt = 0; attempt < 8; attempt++) {
      const cap = Math.min(15_000, 250 * 2 ** attempt);
      const delays = Array.from({ length: 200 }, () => e.retryDelayMs(attempt));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...delays)).toBeLessThan(cap);
      // Full jitter: the lowest and highest fifth of the range both occur.
      expect(delays.some((d) => d < cap * 0.2)).toBe(true);
      expect(delays.some((d) => d > cap * 0.8)).toBe(true);
    }
  });
});

describe('failback', () => {
  test('probes the preferred address only while another serves, every 50–100 % of the interval, and returns when it answers', async () => {
    const probes: { at: number; address: string }[] = [];
    let up = false;
    const { e, time, switches } = picker(['10.0.0.1:8443', '10.0.0.2:8443'], {
      failbackIntervalMs: 10_000,
      probe: async (address) => {
        probes.push({ at: time.nowMs(), address });
        return up;
      },
    });
    e.start();
    time.advance(60_000);
    expect(probes).toEqual([]); // on the preferred one: nothing to probe
    const failedAt = time.nowMs();
    e.failed('10.0.0.1:8443');
    time.advance(4_999);
    expect(probes).toEqual([]); // random 0.5 → 7.5 s
    time.advance(2_501);
    expect(probes.map((p) => [p.at - failedAt, p.address])).toEqual([[7_500, '10.0.0.1:8443']]);
    await settle();
    expect(e.current()).toBe('10.0.0.2:8443'); // it did not answer
    up = true;
    time.advance(7_500);
    await settle();
    expect(probes).toHaveLength(2);
    expect(e.current()).toBe('10.0.0.1:8443');
    expect(switches.at(-1)).toMatchObject({ from: '10.0.0.2:8443', to: '10.0.0.1:8443', reason: 'failback' });
    expect(e.state()).toMatchObject({ failovers: 1, failbacks: 1 });
    time.advance(60_000);
    expect(probes).toHaveLength(2); // back on the preferred one: probing stops
  });

  test('the probe wait stays within [interval/2, interval] for any random value', async () => {
    for (const r of [0, 0.25, 0.999]) {
      let probedAt: number | undefined;
      const time = new FakeTime();
      const e = new ControlPlaneEndpoints({
        addresses: ['10.0.0.1:1', '10.0.0.2:1'],
        clock: time,
        timers: time,
        random: () => r,
        failbackIntervalMs: 8_000,
        probe: async () => {
          probedAt ??= time.nowMs();
          return false;
        },
      });
      e.start();
      const t0 = time.nowMs();
      e.failed('10.0.0.1:1');
      time.advance(8_000);
      expect(probedAt! - t0).toBeGreaterThanOrEqual(4_000);
      expect(probedAt! - t0).toBeLessThanOrEqual(8_000);
      e.stop();
    }
  });

  test('a probe that throws counts as no answer; stop() ends probing', async () => {
    let probes = 0;
    const { e, time } = picker(['10.0.0.1:1', '10.0.0.2:1'], {
      failbackIntervalMs: 1_000,
      probe: async () => {
        probes++;
        throw new Error('boom');
      },
    });
    e.start();
    e.failed('10.0.0.1:1');
    for (let i = 0; i < 3; i++) {
      time.advance(1_000);
      await settle();
    }
    expect(probes).toBe(3);
    expect(e.current()).toBe('10.0.0.2:1');
    e.stop();
    time.advance(10_000);
    await settle();
    expect(probes).toBe(3);
  });

  test('from the third replica it returns to the first, not to the second', async () => {
    const probed: string[] = [];
    const { e, time } = picker(['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1'], {
      failbackIntervalMs: 1_000,
      probe: async (a) => {
        probed.push(a);
        return true;
      },
    });
    e.start();
    e.failed('10.0.0.1:1');
    e.failed('10.0.0.2:1');
    expect(e.current()).toBe('10.0.0.3:1');
    time.advance(1_000);
    await settle();
    expect(probed).toEqual(['10.0.0.1:1']);
    expect(e.current()).toBe('10.0.0.1:1');
  });

  test('without a probe (svid fetch, a single address) nothing is scheduled', () => {
    const { e, time } = picker(['10.0.0.1:1', '10.0.0.2:1']);
    e.start();
    e.failed('10.0.0.1:1');
    expect(time.pending).toBe(0);
  });
});

describe('DNS names', () => {
  test('a name stands for its records, in an order drawn once per proxy; IPv6 records get brackets', async () => {
    const ranks = [0.9, 0.1, 0.5];
    const { e } = picker(['cp.tessera.svc:8443'], { random: () => ranks.shift() ?? 0.5, resolve: async () => ['10.0.0.1', '10.0.0.2', 'fd00::3'] });
    expect(e.current()).toBe('cp.tessera.svc:8443'); // before the first answer gRPC resolves the name itself
    await e.refresh();
    expect(e.state().candidates).toEqual(['10.0.0.2:8443', '[fd00::3]:8443', '10.0.0.1:8443']);
    expect(e.current()).toBe('10.0.0.2:8443');
  });

  test('two proxies prefer different records (they spread), each keeps its own order across re-resolutions', async () => {
    const records = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
    const preferred = new Set<string>();
    for (let seed = 1; seed <= 8; seed++) {
      const { e, time } = picker(['cp.svc:1'], { random: seededRandom(seed), resolve: async () => [...records].reverse() });
      await e.refresh();
      const first = e.state().candidates;
      preferred.add(e.preferred());
      time.advance(10_000);
      await e.refresh();
      expect(e.state().candidates).toEqual(first);
    }
    expect(preferred.size).toBeGreaterThan(1);
  });

  test('failures re-resolve at most every minResolveInterval; a vanished current record hands over to the preferred one', async () => {
    let answer = ['10.0.0.1', '10.0.0.2'];
    let lookups = 0;
    const ranks = [0.1, 0.2, 0.3];
    const { e, time, switches } = picker(['cp.svc:1', '10.9.9.9:1'], {
      random: () => ranks.shift() ?? 0.9,
      minResolveIntervalMs: 5_000,
      resolve: async () => {
        lookups++;
        return answer;
      },
    });
    await e.refresh();
    expect(e.state().candidates).toEqual(['10.0.0.1:1', '10.0.0.2:1', '10.9.9.9:1']);
    e.failed('10.0.0.1:1');
    await settle();
    expect(lookups).toBe(1); // resolved just now
    time.advance(5_000);
    answer = ['10.0.0.1', '10.0.0.3'];
    e.failed('10.0.0.2:1'); // → 10.9.9.9, and a new lookup
    await settle();
    expect(lookups).toBe(2);
    expect(e.state().candidates).toEqual(['10.0.0.1:1', '10.0.0.3:1', '10.9.9.9:1']);
    expect(e.current()).toBe('10.9.9.9:1');
    // The current record disappears from the name's answer: the preferred candidate takes over.
    e.failed('10.9.9.9:1'); // → 10.0.0.1
    e.failed('10.0.0.1:1'); // → 10.0.0.3
    time.advance(5_000);
    answer = ['10.0.0.1'];
    e.failed('10.0.0.1:1'); // not current: only the re-resolution
    await settle();
    expect(e.state().candidates).toEqual(['10.0.0.1:1', '10.9.9.9:1']);
    expect(e.current()).toBe('10.0.0.1:1');
    expect(switches.at(-1)).toMatchObject({ from: '10.0.0.3:1', to: '10.0.0.1:1', reason: 'resolved' });
  });

  test('a lookup that fails keeps the records known (or the name itself) and is reported', async () => {
    let fail = false;
    const errors: string[] = [];
    const { e } = picker(['cp.svc:1'], {
      resolve: async () => {
        if (fail) throw new Error('ENOTFOUND');
        return ['10.0.0.1'];
      },
      onResolveError: (host) => errors.push(host),
    });
    await e.refresh();
    fail = true;
    await e.refresh();
    expect(e.state().candidates).toEqual(['10.0.0.1:1']);
    expect(errors).toEqual(['cp.svc']);
    const never = picker(['cp.svc:1'], { resolve: async () => Promise.reject(new Error('ENOTFOUND')) });
    await never.e.refresh();
    expect(never.e.state().candidates).toEqual(['cp.svc:1']);
  });

  test('IP literals and localhost are never looked up; records past 16 per name are dropped', async () => {
    const looked: string[] = [];
    const many = Array.from({ length: 40 }, (_, i) => `10.1.0.${i + 1}`);
    const { e } = picker(['127.0.0.1:1', 'localhost:2', 'big.svc:3'], {
      resolve: async (h) => {
        looked.push(h);
        return many;
      },
    });
    await e.refresh();
    expect(looked).toEqual(['big.svc']);
    expect(e.state().candidates).toHaveLength(2 + 16);
    expect(e.state().candidates.slice(0, 2)).toEqual(['127.0.0.1:1', 'localhost:2']);
  });
});
