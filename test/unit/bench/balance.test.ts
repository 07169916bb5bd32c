// The `balance` scenario's pure parts: replica shares from per-replica counts, the CPU roles folded into sides,
// the summary and headlines against the bounds, and the mesh sidecar configs as the proxy parses them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { foldReplicaRoles } from '../../../bench/scenarios/balance.js';
import { BALANCED, KILLED, ONE, SLOW, STATIC, allShares, balanceHeadlines, balanceSummary, replicaShares, withShares } from '../../../bench/scenarios/balance-summary.js';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { endpointState } from '../../../bench/peers/mesh-topology.js';
import { tesseraMeshProxyConfig } from '../../../bench/peers/tessera-config.js';
import { parseProxyConfig } from '../../../proxy/src/config/proxy-config.js';
import { DEFAULT_ROUTING } from '../../../proxy/src/config/routing-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bench-balance-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('replica shares', () => {
  test('shares in % of the window total, one decimal', () => {
    expect(replicaShares([1000, 1000, 1000])).toEqual([33.3, 33.3, 33.3]);
    expect(replicaShares([500, 250, 250])).toEqual([50, 25, 25]);
    expect(replicaShares([0, 3, 0])).toEqual([0, 100, 0]);
  });

  test('no share without every count, or when nothing was served', () => {
    expect(replicaShares([10, null, 10])).toBeNull();
    expect(replicaShares([10, undefined, 10])).toBeNull();
    expect(replicaShares([10, -1, 10])).toBeNull();
    expect(replicaShares([0, 0, 0])).toBeNull();
    expect(replicaShares([])).toBeNull();
  });

  test('withShares adds sharePctReplica<i> from requestsReplica<i>, and leaves a row without counts alone', () => {
    expect(withShares({ variant: BALANCED, requestsReplica1: 20, requestsReplica2: 60, requestsReplica3: 20 }, 3)).toMatchObject({ sharePctReplica1: 20, sharePctReplica2: 60, sharePctReplica3: 20 });
    const killed = { variant: KILLED, requestsReplica1: 20, requestsReplica3: 20 };
    expect(withShares(killed, 3)).toBe(killed);
  });
});

test('foldReplicaRoles: server = the replica sidecars summed, app = the apps summed, proxies = client + server', () => {
  const row = foldReplicaRoles({ variant: BALANCED, cpuUsPerReqClient: 60, cpuUsPerReqReplica1: 20.1, cpuUsPerReqReplica2: 20.1, cpuUsPerReqReplica3: 20.1, cpuUsPerReqApp1: 30, cpuUsPerReqApp2: 31, cpuUsPerReqApp3: 32, rssMbReplica1: 70, rssMbApp1: 40, rssMbClient: 80 }, 3);
  expect(row).toMatchObject({ cpuUsPerReqServer: 60.3, cpuUsPerReqApp: 93, cpuUsPerReqProxies: 120.3, rssMbClient: 80 });
  expect(row).not.toHaveProperty('rssMbReplica1');
  expect(row).not.toHaveProperty('rssMbApp1');
  // A replica lost in the window (null CPU): no sum.
  expect(foldReplicaRoles({ cpuUsPerReqClient: 60, cpuUsPerReqReplica1: 20, cpuUsPerReqReplica2: null, cpuUsPerReqReplica3: 20 }, 3)).toMatchObject({ cpuUsPerReqServer: null, cpuUsPerReqProxies: null });
});

/** Two rounds of every variant, with the given shares for the even and slow rows and failures for the killed. */
function rows(o: { even: number[][]; slow: number[][]; killedFails: number[]; clientUs: [number, number][]; oneUs: [number, number][] }): Measurement[] {
  const out: Measurement[] = [];
  const shares = (s: number[]) => Object.fromEntries(s.map((x, i) => [`sharePctReplica${i + 1}`, x]));
  o.even.forEach((s, r) => {
    out.push({ variant: BALANCED, round: r + 1, requests: 3000, reqPerSec: 1000, cpuUsPerReqClient: o.clientUs[r]![0], cpuUsPerReqServer: 90, ...shares(s) });
    out.push({ variant: STATIC, round: r + 1, requests: 3000, reqPerSec: 1000, cpuUsPerReqClient: o.clientUs[r]![1], cpuUsPerReqServer: 80 });
    out.push({ variant: ONE, round: r + 1, requests: 3000, reqPerSec: 1000, cpuUsPerReqClient: o.oneUs[r]![0], cpuUsPerReqServer: o.oneUs[r]![1] });
  });
  for (const [r, s] of o.slow.entries()) out.push({ variant: SLOW, round: r + 1, requests: 3000, ...shares(s) });
  for (const [r, f] of o.killedFails.entries()) out.push({ variant: KILLED, round: r + 1, requests: 3000 - f, non2xx: f, errors: 0, retries: 4, ejections: 1, backInRotationMs: r === 0 ? 1200 : null });
  return out;
}

describe('summary and headlines', () => {
  const good = rows({ even: [[33, 34, 33], [30, 36, 34]], slow: [[48, 48, 4], [47, 47, 6]], killedFails: [0, 0], clientUs: [[64, 61], [70, 66]], oneUs: [[64, 82], [69, 84]] });

  test('allShares spans every replica of every round', () => {
    expect(allShares(good, BALANCED, 3)).toMatchObject({ min: 30, max: 36, n: 6 });
  });

  test('within the issue bounds: every headline says met', () => {
    const h = balanceHeadlines(good, { replicas: 3, offeredRps: 1000 });
    expect(h).toHaveLength(5);
    expect(h[0]).toMatch(/each replica served 30–36 % .*: met\.$/);
    expect(h[1]).toMatch(/served 5 \(4–6\) % .*: met\.$/);
    expect(h[2]).toMatch(/0 failed of 6 000 requests .*retries 8, ejections 2.*: met\. /);
    expect(h[2]).toMatch(/back in the caller's rotation .* after 1\.20 s; in 1 of 2 rounds not within the wait\.$/);
    // The balancer's own cost: one endpoint through service: vs through upstream:, judged on both sides.
    expect(h[3]).toContain("client-side sidecar 66.5 (64–69) vs 63.5 (61–66) µs/req: +3 µs/req (1.05× (1.05–1.05); within the issue's 5 µs/req)");
    expect(h[3]).toContain("replica sidecar 83 (82–84) vs 80 µs/req: +3 (2–4) µs/req (1.04× (1.02–1.05); within the issue's 5 µs/req)");
    // Spreading over 3 replicas is shown, not judged: it is mostly the topology's cost, not the balancer's code.
    expect(h[4]).toContain('client-side sidecar 67 (64–70) vs 63.5 (61–66) µs/req: +3.50 (3–4) µs/req (1.05× (1.05–1.06))');
    expect(h[4]).toContain('replica sidecars (summed; each at a third of the rate) 90 vs 80 µs/req: +10 µs/req (1.13×).');
  });

  test('outside the bounds: the headlines say NOT met', () => {
    const bad = rows({ even: [[20, 50, 30]], slow: [[40, 40, 20]], killedFails: [3], clientUs: [[80, 60]], oneUs: [[70, 80]] });
    const h = balanceHeadlines(bad, { replicas: 3, offeredRps: 1000 });
    expect(h[0]).toMatch(/NOT met\.$/);
    expect(h[1]).toMatch(/NOT met\.$/);
    expect(h[2]).toMatch(/3 failed of 3 000 .*NOT met\. /);
    expect(h[3]).toContain("NOT within the issue's 5 µs/req");
  });

  test('summary: one row per variant, a variant not measured says so', () => {
    const partial = good.filter((m) => m['variant'] !== SLOW);
    const s = balanceSummary(partial);
    expect(s.map((r) => r['variant'])).toEqual([BALANCED, ONE, STATIC, SLOW, KILLED]);
    expect(s[0]).toMatchObject({ 'share % r1 / r2 / r3': '31.5 / 35 / 33.5', 'failed requests': 0 });
    expect(s[3]).toEqual({ variant: SLOW, requests: 'not measured (see notes)' });
    expect(s[4]).toMatchObject({ 'failed requests': 0, retries: 8, ejections: 2, 'back in rotation s': '1.20' });
    expect(balanceHeadlines(partial, { replicas: 3, offeredRps: 1000 }).some((h) => h.startsWith('Slow replica'))).toBe(false);
  });
});

test('endpointState: the state /endpoints gives one address of a service', () => {
  const view = { api: [{ address: '127.0.0.2:4000', state: 'ready' }, { address: '127.0.0.3:4000', state: 'ejected' }], web: [{ address: '127.0.0.4:4000', state: 'ready' }] };
  expect(endpointState(view, 'api', '127.0.0.3:4000')).toBe('ejected');
  expect(endpointState(view, 'api', '127.0.0.2:4000')).toBe('ready');
  expect(endpointState(view, 'api', '127.0.0.4:4000')).toBeNull();
  expect(endpointState(view, 'db', '127.0.0.2:4000')).toBeNull();
  expect(endpointState(null, 'api', '127.0.0.2:4000')).toBeNull();
});

describe('mesh sidecar configs parse as the proxy reads them', () => {
  const controlPlane = { address: '127.0.0.1:18443', bundleFile: '/cp/bundle.pem', joinTokenFile: '/cp/t.token' };

  test('a replica registers its inbound listener as the service', () => {
    const c = parseProxyConfig(tesseraMeshProxyConfig({ controlPlane, adminListen: '127.0.0.2:15000', inbound: { listen: '127.0.0.2:15006', forwardTo: '127.0.0.2:18080', service: 'api' } }), join(dir, 'replica.yaml'));
    expect(c.inbound[0]).toMatchObject({ listen: { host: '127.0.0.2', port: 15006 }, registration: { service: 'api' } });
    expect(c.outbound).toEqual([]);
    expect(c.telemetry.accessLog).toBe('off');
  });

  test('a caller routes by service, or to a static upstream', () => {
    const byService = parseProxyConfig(tesseraMeshProxyConfig({ controlPlane, adminListen: '127.0.0.1:15000', outbound: { listen: '127.0.0.1:15001', route: { service: 'api' } }, routing: { outlier: { baseEjectionTime: '5000ms' } } }), join(dir, 'caller.yaml'));
    expect(byService.outbound[0]!.route).toEqual({ kind: 'service', service: 'api' });
    expect(byService.routing.outlier.baseEjectionMs).toBe(5000);
    expect(byService.routing.slowStartMs).toBe(DEFAULT_ROUTING.slowStartMs);
    const fixed = parseProxyConfig(tesseraMeshProxyConfig({ controlPlane, adminListen: '127.0.0.1:15000', outbound: { listen: '127.0.0.1:15001', route: { upstream: '127.0.0.2:15006', spiffeId: 'spiffe://bench.local/ns/bench/sa/api' } } }), join(dir, 'static.yaml'));
    expect(fixed.outbound[0]!.route).toMatchObject({ kind: 'static', upstream: { host: '127.0.0.2', port: 15006 } });
  });
});
