// The kubelet's view of an injected app that listens on loopback only: its rewritten probes hit the real sidecar's
// admin port (/app-health/<container>/<kind>), which runs them against the app and answers with the outcome.
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

let dir: string;
let cleanup: () => Promise<void>;
let app: Server;
let proxy: ProxyProcess;
const seen: { path: string; probeHeader: string | undefined }[] = [];
let healthy = true;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((req, res) => {
    seen.push({ path: req.url ?? '', probeHeader: req.headers['x-probe'] as string | undefined });
    if (req.url === '/slow') return; // never answers: the probe's own timeout must end it
    res.writeHead(req.url?.startsWith('/ready') && healthy ? 200 : 500).end('app body never relayed');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  // A port nothing listens on: bind, note, close.
  const closed = createTcpServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));

  const ca = await TestCa.create();
  const files = await writeSvidFiles(ca, 'spiffe://example.org/ns/shop/sa/web', join(dir, 'svid'));
  const config = join(dir, 'proxy.yaml');
  await writeFile(
    config,
    [
      'identity:',
      `  files: { certFile: ${files.certFile}, keyFile: ${files.keyFile}, bundleFile: ${files.bundleFile} }`,
      // As injected: the app's port is reachable only through this mTLS listener, which the kubelet cannot pass.
      `inbound: [{ name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }]`,
      'admin:',
      '  listen: 127.0.0.1:0',
      '  appProbes:',
      `    web/readiness: { port: ${appPort}, path: /ready?deep=1, headers: { X-Probe: k8s }, timeout: 2s }`,
      `    web/liveness: { port: ${appPort}, tcp: true }`,
      `    web/startup: { port: ${closedPort}, tcp: true }`,
      `    slow/readiness: { port: ${appPort}, path: /slow, timeout: 300ms }`,
      'telemetry: { accessLog: "off" }',
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(config);
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise((r) => app?.close(r));
  await cleanup?.();
});

/** What the kubelet does: a plain HTTP GET to the pod's admin port; only the status counts. */
async function kubeletProbe(path: string): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${proxy.admin}${path}`]);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

describe('relayed app probes on the sidecar admin port', () => {
  test('an HTTP probe gets the app status (path, query and headers kept), never its body', async () => {
    expect(await kubeletProbe('/app-health/web/readiness')).toEqual({ status: 200, body: '200\n' });
    expect(seen.at(-1)).toEqual({ path: '/ready?deep=1', probeHeader: 'k8s' });
    healthy = false;
    expect((await kubeletProbe('/app-health/web/readiness')).status).toBe(500);
    healthy = true;
  });

  test('a TCP probe is 200 when the app port accepts and 503 when nothing listens', async () => {
    expect((await kubeletProbe('/app-health/web/liveness')).status).toBe(200);
    expect((await kubeletProbe('/app-health/web/startup')).status).toBe(503);
  });

  test('an app that does not answer fails within the probe timeout; unknown names are 404', async () => {
    const t0 = Date.now();
    expect((await kubeletProbe('/app-health/slow/readiness')).status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await kubeletProbe('/app-health/web/nope')).status).toBe(404);
    expect((await kubeletProbe('/app-health/')).status).toBe(404);
  });
});
