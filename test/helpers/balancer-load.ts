// A simulated open-loop load on an EndpointBalancer with a fake clock: what the balancer tests (evenness, latency
// awareness, weights and slow start) measure shares with.
import type { EndpointBalancer } from '../../proxy/src/routing/endpoint-balancer.js';
import type { Lease } from '../../proxy/src/routing/lease.js';
import type { FakeTime } from './fake-time.js';
import { seededRandom } from './seeded-random.js';

export interface LoadRun {
  /** Requests per endpoint address. */
  readonly counts: Map<string, number>;
  /** The address of each request, in order. */
  readonly picks: string[];
}

/**
 * Open-loop load: a request every `intervalMs`, each held for its endpoint's latency (± 20 %, seeded) and then
 * observed and ended; completions are processed in time order between arrivals. Bounded by `requests`.
 */
export function runLoad(b: EndpointBalancer<string>, time: FakeTime, requests: number, intervalMs: number, latencyMs: (address: string) => number, seed = 7): LoadRun {
  const jitter = seededRandom(seed);
  const counts = new Map<string, number>();
  const picks: string[] = [];
  let pending: { at: number; lease: Lease<string>; rtt: number }[] = [];
  const completeUntil = (t: number) => {
    pending.sort((x, y) => x.at - y.at);
    while (pending.length && pending[0]!.at <= t) {
      const p = pending.shift()!;
      time.advance(p.at - time.nowMs());
      p.lease.observe(p.rtt);
      p.lease.end('success');
    }
    time.advance(t - time.nowMs());
  };
  for (let i = 0; i < requests; i++) {
    completeUntil(time.nowMs() + intervalMs);
    const lease = b.pick();
    if (!lease) throw new Error('no endpoint');
    counts.set(lease.address, (counts.get(lease.address) ?? 0) + 1);
    picks.push(lease.address);
    const rtt = latencyMs(lease.address) * (0.8 + 0.4 * jitter());
    pending.push({ at: time.nowMs() + rtt, lease, rtt });
  }
  completeUntil(time.nowMs() + 10_000);
  pending = [];
  return { counts, picks };
}
