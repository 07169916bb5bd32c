// Audit 57a F2: an HTTP/2 CONNECT (RFC 9113 section 8.5: `:method CONNECT`, `:authority`, no `:path`) is a tunnel
// no listener here carries. At the edge on an `http` route it was re-made as an HTTP/1.1 CONNECT whose answer
// node:http hands to a 'connect' listener the bridge did not have: the sidecar's 400 was dropped and the stream
// waited 60 s for a 504 (with END_STREAM) or 300 s (without), holding an upstream connection; on an `http2` route and
// on the sidecars' HTTP/2 listeners it was authorized as a path it does not have (403) or failed upstream (502). Now
// every HTTP/2 listener refuses it at once, as every HTTP/1.1 listener does: 400 bad_request, counted in
// tessera_requests_rejected_total, before routing or authorization, nothing sent upstream. Real edge and sidecar
// processes, real apps, node:http2 clients (with and without END_STREAM on the CONNECT).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
const API = `spiffe://${TD}/ns/default/sa/api`;
const CALLER = `spiffe://${TD}/ns/default/sa/caller`;
/** How long a client waits for the refusal: an answer that is not there by then is the old hang (60 s or 300 s). */
const ANSWER_WITHIN_MS = 10_000;

let dir: string;
let cleanup: () => Promise<void>;
let web: TestCa;
let edge: ProxyProcess;
let sidecar: ProxyProcess;
let caller: ProxyProcess;
let callerTls: { cert: string; key: string; ca: string };
const servers: (Server | http2.Http2Server)[] = [];
/** Requests the apps received. */
let appRequests = 0;

function listen(server: Server | http2.Http2Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** What a CONNECT to `url` is answered with: status and refusal code, or how it ended without an answer. */
function connect(url: string, authority: string, endStream: boolean, tls: http2.SecureClientSessionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = http2.connect(url, { ca: web.bundlePem(), checkServerIdentity: () => undefined, ...tls });
    const done = (what: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('no answer'), ANSWER_WITHIN_MS);
    s.on('error', (e) => done(`session error ${e.message}`));
    const r = s.request({ ':method': 'CONNECT', ':authority': authority }, { endStream });
    r.on('response', (h) => done(`${h[':status']} ${h['x-tessera-error']}`));
    r.on('error', (e) => done(`stream error ${e.message}`));
    r.on('close', () => done(`closed ${r.rstCode}`));
    // Without END_STREAM, what a tunnel would carry: it must never reach an app.
    if (!endStream) r.write('GET /secret HTTP/1.1\r\nHost: a\r\n\r\n');
  });
}

const rejected = async (admin: number, direction: string) => sumSeries(await metricsText(admin), 'tessera_requests_rejected_total', { direction, reason: 'bad_request' });

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  const app = createServer((_req, res) => {
    appRequests++;
    res.end('ok');
  });
  const h2app = http2.createServer((_req, res) => {
    appRequests++;
    res.end('ok');
  });
  const [appPort, h2Port] = [await listen(app), await listen(h2app)];
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["${EDGE}", "${API}", "${CALLER}"]\n`);
  await writeSvidFiles(mesh, API, join(dir, 'api'));
  callerTls = await (async () => {
    const f = await writeSvidFiles(mesh, CALLER, join(dir, 'caller'));
    const [c, k, b] = await Promise.all([readFile(f.certFile, 'utf8'), readFile(f.keyFile, 'utf8'), readFile(f.bundleFile, 'utf8')]);
    return { cert: c, key: k, ca: b };
  })();
  // The sidecar: an HTTP/1.1 and an HTTP/2 inbound listener, and an outbound h2c listener to the latter.
  await writeFile(
    join(dir, 'api.yaml'),
    [
      'identity:',
      '  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }',
      'inbound:',
      `  - { name: h1, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }`,
      `  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2Port}, protocol: http2 }`,
      'authorization: { policiesDir: policies }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  sidecar = await startProxyProcess(join(dir, 'api.yaml'));
  const [h1, h2] = [sidecar.ports.get('inbound/h1')!, sidecar.ports.get('inbound/h2')!];
  // A caller's sidecar: an outbound h2c listener to the HTTP/2 inbound one.
  await writeFile(
    join(dir, 'caller.yaml'),
    `identity:\n  files: { certFile: caller/svid.pem, keyFile: caller/key.pem, bundleFile: caller/bundle.pem }\noutbound:\n  - { name: h2c, listen: 127.0.0.1:0, upstream: 127.0.0.1:${h2}, spiffeId: ${API}, protocol: http2 }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  caller = await startProxyProcess(join(dir, 'caller.yaml'));
  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  await writeFile(
    join(dir, 'edge.yaml'),
    edgeConfigYaml({
      routes: [
        `{ host: mesh.test, pathPrefix: /, upstream: 127.0.0.1:${h1}, spiffeId: ${API} }`,
        `{ host: plain.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }`,
        `{ host: h2.test, pathPrefix: /, upstream: 127.0.0.1:${h2}, spiffeId: ${API}, protocol: http2 }`,
      ],
    }),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await caller?.stop();
  await sidecar?.stop();
  for (const s of servers) s.close();
  await cleanup?.();
});

for (const endStream of [true, false]) {
  const form = endStream ? 'with END_STREAM' : 'left open, a request written into it';
  test(`edge: an HTTP/2 CONNECT ${form} is refused at once (400 bad_request, counted) on every route kind, nothing sent upstream`, async () => {
    const port = edge.ports.get('edge/public')!;
    const before = [await rejected(edge.admin, 'edge'), appRequests];
    // An `http` route to a sidecar (the bridge to HTTP/1.1), one to an app in plaintext, and an `http2` route.
    for (const host of ['mesh.test:443', 'plain.test:443', 'h2.test:443']) {
      expect(await connect(`https://127.0.0.1:${port}`, host, endStream, { servername: 'edge.test' }), host).toBe('400 bad_request');
    }
    expect(await rejected(edge.admin, 'edge')).toBe(before[0]! + 3);
    expect(appRequests).toBe(before[1]);
  });

  test(`sidecar: an HTTP/2 CONNECT ${form} to the inbound h2 listener is refused at once (400 bad_request, counted), before authorization`, async () => {
    const before = [await rejected(sidecar.admin, 'inbound'), appRequests];
    expect(await connect(`https://127.0.0.1:${sidecar.ports.get('inbound/h2')!}`, 'api:443', endStream, { ...callerTls, servername: 'api' })).toBe('400 bad_request');
    expect(await rejected(sidecar.admin, 'inbound')).toBe(before[0]! + 1);
    expect(appRequests).toBe(before[1]);
  });

  test(`sidecar: an HTTP/2 CONNECT ${form} to an outbound h2c listener is refused at once (400 bad_request, counted), nothing sent to the peer`, async () => {
    const before = [await rejected(caller.admin, 'outbound'), await rejected(sidecar.admin, 'inbound'), appRequests];
    expect(await connect(`http://127.0.0.1:${caller.ports.get('outbound/h2c')!}`, 'api:443', endStream)).toBe('400 bad_request');
    expect(await rejected(caller.admin, 'outbound')).toBe(before[0]! + 1);
    expect([await rejected(sidecar.admin, 'inbound'), appRequests]).toEqual(before.slice(1));
  });
}

test('the same listeners still serve an ordinary HTTP/2 request', async () => {
  const edgeUrl = `https://127.0.0.1:${edge.ports.get('edge/public')!}`;
  const targets: [string, string, http2.SecureClientSessionOptions][] = [
    [edgeUrl, 'mesh.test', { servername: 'edge.test' }],
    [edgeUrl, 'plain.test', { servername: 'edge.test' }],
    [edgeUrl, 'h2.test', { servername: 'edge.test' }],
    [`https://127.0.0.1:${sidecar.ports.get('inbound/h2')!}`, 'api', { ...callerTls, servername: 'api' }],
    [`http://127.0.0.1:${caller.ports.get('outbound/h2c')!}`, 'api', {}],
  ];
  for (const [url, host, tls] of targets) {
    const status = await new Promise<string>((resolve) => {
      const s = http2.connect(url, { ca: web.bundlePem(), checkServerIdentity: () => undefined, ...tls });
      s.on('error', (e) => resolve(e.message));
      const r = s.request({ ':path': '/ok', ':authority': host });
      r.on('response', (h) => resolve(String(h[':status'])));
      r.on('error', (e) => resolve(e.message));
      r.resume();
      r.on('end', () => s.close());
      r.end();
    });
    expect(status, host).toBe('200');
  }
});
