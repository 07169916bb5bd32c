// Connections past limits.maxConnections are closed at accept and counted by reason, on an mTLS inbound listener
// and a plaintext outbound one: the process keeps serving the connections it holds.
import { writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const MAX = 2;

let dir: string;
let cleanup: () => Promise<void>;
let proxy: ProxyProcess;
const open: net.Socket[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    'identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\n' +
      'inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }\n' +
      `outbound:\n  - { name: up, listen: 127.0.0.1:0, upstream: 127.0.0.1:9, spiffeId: ${API} }\n` +
      `admin: { listen: 127.0.0.1:0 }\nlimits: { maxConnections: ${MAX}, handshakeTimeout: 30s, headersTimeout: 30s, drainTimeout: 1s }\n`,
  );
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
  // The proxy's own served-serial probe takes an inbound slot right after start: let it finish and close first.
  const admin = `http://127.0.0.1:${proxy.admin}`;
  await until('served check done', async () => ((await (await fetch(`${admin}/certs`)).json()) as { lastServedCheck: unknown }).lastServedCheck !== null, 10_000);
  await until('probe connection closed', async () => sumSeries(await metricsText(proxy.admin), 'tessera_connections_active', { direction: 'inbound' }) === 0, 10_000);
}, 30_000);

afterAll(async () => {
  for (const s of open) s.destroy();
  await proxy?.stop();
  await cleanup?.();
});

/** Opens a TCP connection and reports whether the proxy closed it within a second (true) or kept it. */
function connect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    open.push(s);
    s.on('error', () => undefined);
    const t = setTimeout(() => resolve(false), 1_000);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

test.each([
  { listener: 'inbound/app', direction: 'inbound' },
  { listener: 'outbound/up', direction: 'outbound' },
])('$listener: past maxConnections a connection is closed and counted as too_many_connections', async ({ listener, direction }) => {
  const port = proxy.ports.get(listener)!;
  const held = await Promise.all(Array.from({ length: MAX }, () => connect(port)));
  expect(held).toEqual(Array(MAX).fill(false));
  expect(await connect(port)).toBe(true);
  await until('the drop is counted', async () => sumSeries(await metricsText(proxy.admin), 'tessera_requests_rejected_total', { direction, reason: 'too_many_connections' }) >= 1, 5_000);
  expect((await fetch(`http://127.0.0.1:${proxy.admin}/healthz`)).status).toBe(200);
});
