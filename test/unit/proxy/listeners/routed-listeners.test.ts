// Outbound listeners routed to services (outbound `service:` and `mode: http-proxy`) on loopback with real
// routing deps (a ServiceDirectory, the routing metrics): a request answered locally, before any endpoint is
// chosen (here: no SVID yet), is recorded without a route and the listener keeps serving (it used to read the
// fixed upstream's peer, which a routed listener does not have, and the proxy died).
import * as net from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { ForwardProxyListener } from '../../../../proxy/src/listeners/forward-proxy-listener.js';
import type { ListenerDeps } from '../../../../proxy/src/listeners/listener-deps.js';
import { OutboundH2Listener } from '../../../../proxy/src/listeners/outbound-h2-listener.js';
import { OutboundListener } from '../../../../proxy/src/listeners/outbound-listener.js';
import { ServiceDirectory } from '../../../../proxy/src/routing/service-directory.js';
import { createProxyRegistry } from '../../../../proxy/src/telemetry/metrics.js';
import { RoutingMetrics } from '../../../../proxy/src/telemetry/routing-metrics.js';
import { listenerDeps } from '../../../helpers/listener-deps.js';

const config = parseProxyConfig(
  `identity: { controlPlane: { address: 127.0.0.1:9, bundleFile: /nonexistent/b.pem, joinToken: t } }
outbound:
  - { name: api, listen: 127.0.0.1:0, service: api }
  - { name: grpc, listen: 127.0.0.1:0, service: api, protocol: grpc }
  - { name: mesh, listen: 127.0.0.1:0, mode: http-proxy }
`,
  '/test/proxy.yaml',
);

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function routedDeps(): ListenerDeps {
  const base = listenerDeps(config.limits);
  return { ...base, routing: { directory: new ServiceDirectory(), settings: config.routing, metrics: new RoutingMetrics(createProxyRegistry()), random: Math.random, schedule: (ms, fn) => void setTimeout(fn, ms) } };
}

/** Sends `request` on a new connection and returns everything answered until the server closes or 2 s pass. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(request));
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.once('close', () => resolve(got));
    s.once('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 2_000).unref();
  });
}

test('a service listener answers 503 not_ready without a route, and again on the next request', async () => {
  const l = new OutboundListener(config.outbound[0]!, routedDeps());
  open.push(l);
  const { port } = await l.start();
  for (let i = 0; i < 2; i++) {
    const answer = await exchange(port, 'GET /x HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toContain('x-tessera-error: not_ready');
  }
});

test('the forward proxy answers 503 not_ready to an absolute-form request and to a CONNECT, and keeps serving', async () => {
  const l = new ForwardProxyListener(config.outbound[2]!, routedDeps());
  open.push(l);
  const { port } = await l.start();
  const plain = await exchange(port, 'GET http://api/x HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n');
  expect(plain).toMatch(/^HTTP\/1\.1 503 /);
  expect(plain).toContain('x-tessera-error: not_ready');
  const tunnel = await exchange(port, 'CONNECT api:443 HTTP/1.1\r\nhost: api:443\r\n\r\n');
  expect(tunnel).toMatch(/^HTTP\/1\.1 503 /);
  expect(tunnel).toContain('x-tessera-error: not_ready');
  expect(await exchange(port, 'CONNECT api:0 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
});

test('an HTTP/2 service listener with no endpoint answers 503 no_endpoints (no fixed upstream to name)', async () => {
  const l = new OutboundH2Listener({ ...config.outbound[1]!, protocol: 'http2' }, routedDeps());
  open.push(l);
  const { port } = await l.start();
  const http2 = await import('node:http2');
  const client = http2.connect(`http://127.0.0.1:${port}`);
  open.push({ close: () => client.destroy() });
  for (let i = 0; i < 2; i++) {
    const status = await new Promise<{ status: number; code: unknown }>((resolve, reject) => {
      const req = client.request({ ':path': '/x' });
      req.once('response', (h) => resolve({ status: Number(h[':status']), code: h['x-tessera-error'] }));
      req.once('error', reject);
      req.end();
    });
    expect(status).toEqual({ status: 503, code: 'no_endpoints' });
  }
});
