// Failing endpoints past the ejection cap, with real processes (audit 57c F2): the control plane's static file lists
// five endpoints of `api` where nothing listens (connections refused) beside two replicas that register themselves,
// and the caller balances over all seven; then one replica answers 503 to everything. Before the fix failing fast
// made an endpoint look cheapest: with 2 healthy replicas each request first spent about one failed connect, and
// with 1 healthy + 1 answering 503, 61-63 % of the requests failed (502) while the healthy one was ready.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freeLowPorts } from '../helpers/free-port.js';
import { API_ID, endpointsView, failures, Mesh, type Outcome, SERVICE, startLoad } from '../helpers/mesh-replicas.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

/** Ejections outlast the test: once 3 of the 7 are ejected (maxEjectionPercent 50), which ones stays fixed. */
const CLIENT_TAIL = 'routing: { outlier: { baseEjectionTime: 10m } }\n';
const REQUESTS = 2_000;

let mesh: Mesh;
let cleanup: () => Promise<void>;
let dead: string[];

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await Mesh.start(dir, { replicas: 2, clientTail: CLIENT_TAIL });
  await mesh.waitUntilAllAnswer();
  const base = await freeLowPorts(5);
  dead = Array.from({ length: 5 }, (_, i) => `127.0.0.1:${base + i}`);
  await mesh.writeStaticEndpoints({ [SERVICE]: dead.map((address) => ({ address, spiffeId: API_ID })) });
  await until('the caller knows all 7 endpoints', async () => (await mesh.endpoints()).length === 7, 30_000, 100);
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

interface View {
  readonly address: string;
  readonly state: string;
  readonly requests: number;
  readonly failures: number;
  readonly penaltyMs?: number;
}

/** The caller's `api` listener's view of each endpoint, by address. */
async function views(): Promise<Map<string, View>> {
  const all = (await endpointsView(mesh.client.admin))[SERVICE] as unknown as (View & { listener: string })[];
  return new Map(all.filter((v) => v.listener === 'api').map((v) => [v.address, v]));
}

/** Attempts each endpoint took between two views. */
function attemptsBetween(before: Map<string, View>, after: Map<string, View>, addresses: readonly string[]): number {
  return addresses.reduce((s, a) => s + (after.get(a)?.requests ?? 0) - (before.get(a)?.requests ?? 0), 0);
}

describe('failing endpoints are not the cheapest (audit 57c F2)', () => {
  test('2 healthy + 5 refusing, past the ejection cap: no request fails, and the dead ones take under 5 % as many attempts as there are requests', async () => {
    // A warm-up until three dead endpoints are ejected (5 failures in a row each, the default): the cap, so the
    // other two stay in the draw. Left out of the draw after two failures, a dead endpoint gets its 3rd to 5th
    // from one attempt each time its penalty fades (~4 s); the loop is bounded. Its retries go to the replicas that
    // answered before, so no request fails here either (on the code before, 4 of the first 200 did, while the dead
    // endpoints were new: three unknown endpoints could take all three attempts).
    const warm: Outcome[] = [];
    await until(
      'three dead endpoints ejected',
      async () => {
        warm.push(...(await startLoad({ port: mesh.port('api'), concurrency: 8, total: 200, path: '/warm-majority' }).done));
        return [...(await views()).values()].filter((v) => v.state === 'ejected').length === 3;
      },
      60_000,
      100,
    );
    const before = await views();
    const startMs = Date.now();
    const out = await startLoad({ port: mesh.port('api'), concurrency: 8, total: REQUESTS, path: '/majority' }).done;
    const seconds = (Date.now() - startMs) / 1000;
    const after = await views();
    const wasted = attemptsBetween(before, after, dead);
    // A figure, not an assertion (bench/ holds timings): the audit saw ~2,000 req/s fall to ~1,200 with the waste.
    console.log(`2 healthy + 5 refusing: ${REQUESTS} requests in ${seconds.toFixed(2)} s (${Math.round(REQUESTS / seconds)} req/s), ${wasted} attempts on dead endpoints; ${failures(warm).length} of the warm-up's ${warm.length} failed`);
    // Each dead endpoint not ejected is drawn again only once its penalty has faded (0.7 s after its 2nd failure in a
    // row, 1.4 s after its 3rd, …), one attempt then (a few if clients race it): a handful over this run, where
    // before it was about one per request (the audit: 12,900 attempts for 12,041 requests).
    expect(wasted).toBeLessThan(REQUESTS * 0.05);
    // Every retry of a failed connect goes to a replica that answered and has not failed since: a request fails
    // only if both replicas fail it.
    expect(failures(warm)).toEqual([]);
    expect(failures(out)).toEqual([]);
    expect(dead.filter((a) => after.get(a)!.state === 'ejected')).toHaveLength(3);
  }, 120_000);

  test('past the ejection cap, 1 healthy + 1 answering 503 + 5 refusing: at most 1 % of the requests fail; the healthy replica is never ejected', async () => {
    const [healthy, failing] = mesh.replicas;
    failing!.app.status = 503;
    try {
      // A warm-up: the 503 replica fails and is left out of the draw; it cannot be ejected, the cap (3 of 7) is taken.
      await startLoad({ port: mesh.port('api'), concurrency: 8, total: 200, path: '/warm-cap' }).done;
      const before = await views();
      expect(before.get(failing!.address)!.state).toBe('ready');
      const out = await startLoad({ port: mesh.port('api'), concurrency: 8, total: REQUESTS, path: '/cap' }).done;
      const after = await views();
      const failed = failures(out);
      const wasted = attemptsBetween(before, after, [...dead, failing!.address]);
      console.log(`1 healthy + 1 answering 503 + 5 refusing: ${failed.length} of ${REQUESTS} requests failed, ${wasted} attempts on failing endpoints`);
      // Once every failing endpoint has failed (the warm-up), a retry goes to the one endpoint that has not, the
      // healthy replica: a request fails only if that replica fails it, which nothing here makes it do. 1 % leaves
      // room for a stray hiccup of a loaded machine and is still 60 times below the 61-63 % of before.
      expect(failed.length, failed.slice(0, 5).join('; ')).toBeLessThanOrEqual(REQUESTS * 0.01);
      expect(out.filter((o) => o.replica === healthy!.name).length).toBeGreaterThanOrEqual(REQUESTS * 0.99);
      expect(after.get(healthy!.address)!.state).toBe('ready');
      expect(wasted).toBeLessThan(REQUESTS * 0.05);
    } finally {
      failing!.app.status = 200;
    }
  }, 120_000);
});
