// Answers Tessera gives before it has read the request, through a real proxy process and Node's own HTTP client.
// An outside audit (23c): a sidecar answered 502 to a large upload whose upstream was gone, closed gracefully and
// stopped reading; the client, still writing its body, never saw the close, and its next request on that keep-alive
// connection hung until the idle timeout (two minutes). The rest of the body is now read and dropped (a lingering
// close). The same family for a 403 before the body, on a permissive inbound listener.
import { mkdir, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const BODY_BYTES = 8 * 1024 * 1024;

let cleanup: () => Promise<void>;
let app: http.Server;
let proxy: ProxyProcess;
let appReceived = 0;

beforeAll(async () => {
  const tmp = await makeTempDir();
  cleanup = tmp.cleanup;
  const dir = tmp.dir;
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'allow.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [unauthenticated]\n      to: { paths: ["/ok"] }\n`,
  );
  app = http.createServer((req, res) => {
    appReceived++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // A port nothing listens on: the outbound's upstream is gone (502 upstream_unavailable at once).
  const gone = http.createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const gonePort = (gone.address() as AddressInfo).port;
  await new Promise<void>((r) => gone.close(() => r()));
  await writeFile(
    join(dir, 'proxy.yaml'),
    [
      'identity:',
      '  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }',
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port}, mtls: permissive }`,
      'outbound:',
      `  - { name: gone, listen: 127.0.0.1:0, upstream: 127.0.0.1:${gonePort}, spiffeId: ${API} }`,
      'authorization: { policiesDir: policies }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(join(dir, 'proxy.yaml'));
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  app?.closeAllConnections();
  app?.close();
  await cleanup?.();
});

/** A request on `agent`; a large body is written in 64 KiB pieces, waiting for 'drain' as a streaming client does. */
function send(port: number, agent: http.Agent, method: string, path: string, bodyBytes: number, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: bodyBytes ? { 'content-length': String(bodyBytes) } : {}, ...(signal ? { signal } : {}) }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    if (!bodyBytes) return void req.end();
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < bodyBytes && !req.destroyed) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

test.each([
  ['outbound, upstream gone: 502 before the body is read', 'outbound/gone', '/upload', 502, 'upstream_unavailable', 502],
  ['permissive inbound, policy denies: 403 before the body is read', 'inbound/app', '/denied', 403, 'authz_denied', 200],
])('%s; the client finishes its upload and its next request is answered', async (_name, listener, path, status, reason, nextStatus) => {
  const port = proxy.ports.get(listener)!;
  // One connection, as a keep-alive client pool of one: the next request waits for this one's socket.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const before = appReceived;
    const early = await send(port, agent, 'POST', path, BODY_BYTES);
    expect(early.status).toBe(status);
    expect(early.body).toBe(`${reason}\n`);
    // Not a timing figure: a hang bound well below the idle timeout the old code waited for (120 s).
    const next = await send(port, agent, 'GET', '/ok', 0, AbortSignal.timeout(10_000));
    expect(next.status).toBe(nextStatus);
    expect(appReceived - before).toBe(nextStatus === 200 ? 1 : 0);
  } finally {
    agent.destroy();
  }
}, 30_000);
