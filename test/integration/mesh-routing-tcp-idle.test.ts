// A TCP outbound listener balanced over a service (real processes: control plane, a replica behind its proxy, the
// caller): tunnels that sit idle past the caller's limits.idleTimeout, or that their client resets, worked, and say
// nothing about the endpoint (audit 30c F2). Before, each was the endpoint's `reset` and counted 502, so five idle
// pooled connections in a row ejected a healthy replica.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Mesh, SERVICE_TCP } from '../helpers/mesh-replicas.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

let mesh: Mesh;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await Mesh.start(dir, { replicas: 1, tcp: true, tcpHold: true, clientTail: 'limits: { idleTimeout: 300ms }\n' });
  await until('the caller knows the TCP endpoint', async () => (await mesh.endpoints('api-tcp')).length === 1, 30_000);
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

/** A tunnel whose client reads the app's answer, then neither sends nor closes (`reset`: resets it): the app holds it open. */
function idleTunnel(port: number, reset = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d;
      if (reset) s.resetAndDestroy();
    });
    s.on('error', () => undefined);
    // The proxy's close is a FIN (the client, half-open, would wait for ever for its own end): its end is enough.
    const over = () => {
      resolve(got);
      s.destroy();
    };
    s.on('end', over);
    s.on('close', over);
    s.setTimeout(10_000, () => reject(new Error(`the tunnel was never closed (${got})`)));
  });
}

test('six idle tunnels and three reset by their client: no failure charged, not ejected, counted 408 and 499, never 502', async () => {
  const port = mesh.port('api-tcp');
  for (let i = 0; i < 6; i++) expect(await idleTunnel(port)).toBe(mesh.replicas[0]!.name);
  for (let i = 0; i < 3; i++) await idleTunnel(port, true);
  const [ep] = await mesh.endpoints('api-tcp');
  expect(ep).toMatchObject({ state: 'ready', failures: 0, ejections: 0 });
  await until('all nine are counted', async () => sumSeries(await metricsText(mesh.client.admin), 'tessera_requests_total', { protocol: 'tcp' }) >= 9, 5_000);
  const m = await metricsText(mesh.client.admin);
  expect(sumSeries(m, 'tessera_requests_total', { protocol: 'tcp', code: '408' })).toBe(6);
  expect(sumSeries(m, 'tessera_requests_total', { protocol: 'tcp', code: '499' })).toBe(3);
  expect(sumSeries(m, 'tessera_requests_total', { protocol: 'tcp', code: '502' })).toBe(0);
  expect(sumSeries(m, 'tessera_endpoint_requests_total', { service: SERVICE_TCP, outcome: 'cancelled' })).toBe(9);
  expect(sumSeries(m, 'tessera_endpoint_requests_total', { service: SERVICE_TCP, outcome: 'reset' })).toBe(0);
}, 60_000);
