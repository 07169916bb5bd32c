// A simulated closed-loop load through ExchangeRoute (the real retries, retry budget and backoff) over an
// EndpointBalancer with a fake clock: each endpoint scripted to answer, answer 5xx, or refuse connections. What the
// balancer's failure tests (audit 57c F2) count requests, failed requests and attempts per endpoint with.
import type { EndpointBalancer } from '../../proxy/src/routing/endpoint-balancer.js';
import { ExchangeRoute, type RouteDeps } from '../../proxy/src/routing/exchange-route.js';
import { RetryBudget } from '../../proxy/src/routing/retry-budget.js';
import { DEFAULT_ROUTING } from '../../proxy/src/config/routing-config.js';
import type { FakeTime } from './fake-time.js';
import { seededRandom } from './seeded-random.js';

/** What an endpoint does with an attempt placed at `nowMs`: refuse the connection, or answer after `ms`. */
export type Behaviour = (nowMs: number) => 'refused' | { readonly ms: number; readonly status: number };

export interface RouteLoadRun {
  readonly requests: number;
  /** Requests whose every attempt failed (the client got the last failure). */
  readonly failed: number;
  /** When each of those ended, in ms since the run began. */
  readonly failedAtMs: readonly number[];
  /** Attempts per endpoint address, failed ones included. */
  readonly attempts: Map<string, number>;
  /** Successful answers per endpoint address, per whole second of the run (`${address} ${second}`). */
  readonly okPerSecond: Map<string, number>;
}

/** How long a refused connect takes on loopback, in ms. */
const REFUSE_MS = 0.2;

/**
 * `concurrency` clients each sending a GET as soon as the last one ended, for `durationMs` of simulated time; every
 * attempt is placed by ExchangeRoute (a refused connect goes elsewhere at once, a 5xx after the backoff, within the
 * budget). Answer times vary ± 20 % (seeded). Bounded: at most 5,000,000 events.
 */
export function runRouteLoad(b: EndpointBalancer<string>, time: FakeTime, behaviours: ReadonlyMap<string, Behaviour>, o: { readonly concurrency: number; readonly durationMs: number; readonly seed: number; readonly requestFails?: () => boolean }): RouteLoadRun {
  const random = seededRandom(o.seed);
  const jitter = seededRandom(o.seed + 1000);
  const start = time.nowMs();
  const deps: RouteDeps<string> = {
    service: 'api',
    pick: (exclude) => b.pick(exclude),
    budget: new RetryBudget(DEFAULT_ROUTING.retry, () => time.nowMs()),
    retry: DEFAULT_ROUTING.retry,
    headTimeoutMs: 60_000,
    nowMs: () => time.nowMs(),
    random,
    onRetry: () => undefined,
    onAttempt: () => undefined,
    onLatency: () => undefined,
  };
  const queue: { at: number; seq: number; fn: () => void }[] = [];
  let seq = 0;
  const at = (ms: number, fn: () => void) => queue.push({ at: time.nowMs() + ms, seq: seq++, fn });
  const attempts = new Map<string, number>();
  const okPerSecond = new Map<string, number>();
  let requests = 0;
  let failed = 0;
  const failedAtMs: number[] = [];
  const request = (): void => {
    if (time.nowMs() - start >= o.durationMs) return;
    const route = ExchangeRoute.open(deps);
    if (!route) throw new Error('no endpoint');
    requests++;
    // A request every endpoint answers 503 (a URL the app always fails), whatever the endpoint's own behaviour.
    const doomed = o.requestFails?.() ?? false;
    const fail = (reason: 'connect_failed' | 'status_5xx') => {
      const next = route.retry(reason, true);
      if (!next) {
        failed++;
        failedAtMs.push(time.nowMs() - start);
        return request();
      }
      at(next.delayMs, attempt);
    };
    const attempt = (): void => {
      const address = route.lease.address;
      attempts.set(address, (attempts.get(address) ?? 0) + 1);
      const does = behaviours.get(address)!(time.nowMs());
      if (does === 'refused') return void at(REFUSE_MS, () => fail('connect_failed'));
      route.dispatched();
      at(does.ms * (0.8 + 0.4 * jitter()), () => {
        route.responded();
        if (doomed || does.status >= 500) return fail('status_5xx');
        route.end('success');
        const key = `${address} ${Math.floor((time.nowMs() - start) / 1000)}`;
        okPerSecond.set(key, (okPerSecond.get(key) ?? 0) + 1);
        request();
      });
    };
    attempt();
  };
  for (let i = 0; i < o.concurrency; i++) at(0, request);
  for (let events = 0; queue.length > 0 && events < 5_000_000; events++) {
    let next = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.at < queue[next]!.at || (queue[i]!.at === queue[next]!.at && queue[i]!.seq < queue[next]!.seq)) next = i;
    const e = queue.splice(next, 1)[0]!;
    if (e.at > time.nowMs()) time.advance(e.at - time.nowMs());
    e.fn();
  }
  return { requests, failed, failedAtMs, attempts, okPerSecond };
}
