// A control-plane restart after an outage long enough for the replicas' proxies to back off (audit 54a F2), with
// real processes on loopback: the control plane is killed (SIGKILL), stays down for 8 s while three replica proxies
// retry on their real backoff, and comes back on the same data dir. No replica may vanish from the caller's view
// (its admin /endpoints, polled every 50 ms) until every proxy has registered again. registrationGrace is 1 s, as
// an operator may set it: the remembered registrations must be kept for the proxies' reconnect schedule anyway.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Mesh, SERVICE } from '../helpers/mesh-replicas.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

let mesh: Mesh;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await Mesh.start(dir, { replicas: 3, cpDiscovery: 'registrationGrace: 1s' });
  await mesh.waitUntilAllAnswer();
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

/** The restarted control plane's own view: the addresses registered again (confirmed) for the service. */
async function confirmedAtControlPlane(): Promise<string[]> {
  const res = await fetch(`http://${mesh.cp.admin}/endpoints`);
  const body = (await res.json()) as Record<string, { address: string; confirmed: boolean }[]>;
  return (body[SERVICE] ?? []).filter((e) => e.confirmed).map((e) => e.address);
}

describe('control-plane restart: remembered registrations', () => {
  test('no live replica drops out of the caller’s endpoints while the proxies reconnect on their backoff', async () => {
    const all = mesh.replicas.map((r) => r.address).sort();
    expect((await mesh.endpoints()).map((e) => e.address).sort()).toEqual(all);

    const t0 = Date.now();
    const missing: string[] = [];
    let polls = 0;
    let watching = true;
    const watcher = (async () => {
      // Bounded: stopped below, and at most ~3 minutes of polls in any case.
      for (let i = 0; watching && i < 3_600; i++) {
        const seen = new Set((await mesh.endpoints()).map((e) => e.address));
        for (const a of all) if (!seen.has(a)) missing.push(`${a} missing ${Date.now() - t0} ms after the kill`);
        polls++;
        await sleep(50);
      }
    })();

    const exited = new Promise((r) => mesh.cp.proc.once('exit', r));
    mesh.cp.proc.kill('SIGKILL');
    await exited;
    // Down long enough that the proxies' attempts fail and their backoff grows (several seconds between tries).
    await sleep(8_000);
    await mesh.restartControlPlane();
    const readyAt = Date.now() - t0;
    // Every proxy's pending retry fires within the reconnect cap (15 s) of the restart; bounded well beyond it.
    await until('every replica registered again', async () => (await confirmedAtControlPlane()).sort().join() === all.join(), 45_000, 100);
    // A little longer, so a sweep the caller hears of late would still show.
    await sleep(2_000);
    watching = false;
    await watcher;
    expect(polls).toBeGreaterThan(100);
    expect(missing.slice(0, 10), `control plane ready ${readyAt} ms after the kill`).toEqual([]);
  }, 120_000);
});
