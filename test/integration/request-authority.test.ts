// The host an app is told is the host the request named, on every path an HTTP/2 request takes (audit 53a F1, F5),
// with real processes: an edge (one process, and `workers: 2`) routing by host to api's sidecar (HTTP/1.1 and
// HTTP/2 inbound listeners, apps behind them), web's sidecar (outbound h2c) in front of api. An HTTP/2 request may
// name its authority in `host` instead of `:authority` (RFC 9113 section 8.3.1; Node's client sends only `host`
// when given one): the edge routed by it, but the app was told the next hop's address (the HTTP/1.1 upstream's as
// Host, node:http2's session authority as `:authority`), and the sidecars' h2 listeners did the same. When both
// come, `:authority` is routed by and told, as before. The edge's X-Forwarded-Host and Forwarded `host=` carry the
// client's Host with its port (RFC 7239 section 5.3); they dropped it.
import { writeFile } from 'node:fs/promises';
import { type IncomingHttpHeaders, createServer } from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, tlsOptionsOf, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
/** The host the edge routes to api; any other goes to the plain `other` app. */
const SECRET = 'secret.example';

let dir: string;
let cleanup: () => Promise<void>;
const servers: net.Server[] = [];
let api: ProxyProcess;
let web: ProxyProcess;
let edge: ProxyProcess;
let edgeWorkers: ProxyProcess;
let siteCa: string;
let webTls: { cert: string; key: string; ca: string };

/** What an app was told: which app it is, its host (HTTP/1.1 Host; HTTP/2 `:authority` and `host`) and the forwarding fields. */
interface Told {
  readonly app: string;
  readonly authority?: string | null;
  readonly host: string | null;
  readonly xfh: string | null;
  readonly forwarded: string | null;
}

const one = (v: string | string[] | undefined): string | null => (v === undefined ? null : String(v));
const told = (app: string, h: IncomingHttpHeaders | http2.IncomingHttpHeaders, extra: object = {}): string =>
  JSON.stringify({ app, ...extra, host: one(h.host), xfh: one(h['x-forwarded-host']), forwarded: one(h.forwarded) });

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

const h1App = (name: string) => listen(createServer((req, res) => res.end(told(name, req.headers))));
const h2App = () =>
  listen(
    http2.createServer().on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200 });
      stream.end(told('h2', headers, { authority: one(headers[':authority']) }));
    }) as unknown as net.Server,
  );

function edgeYaml(workers: number, appPort: number, h2Port: number, otherPort: number): string {
  return [
    ...(workers > 1 ? [`workers: ${workers}`] : []),
    'identity:',
    '  files: { certFile: edge/svid.pem, keyFile: edge/key.pem, bundleFile: edge/bundle.pem }',
    'edge:',
    '  - name: public',
    '    listen: 127.0.0.1:0',
    '    certFile: site.pem',
    '    keyFile: site.key',
    '    routes:',
    `      - { host: ${SECRET}, pathPrefix: /, upstream: 127.0.0.1:${appPort}, spiffeId: ${API} }`,
    `      - { host: ${SECRET}, pathPrefix: /h2, upstream: 127.0.0.1:${h2Port}, spiffeId: ${API}, protocol: http2 }`,
    `      - { host: "*", pathPrefix: /, upstream: 127.0.0.1:${otherPort}, unsafePlaintext: true }`,
    'authorization: { defaultAction: allow }',
    'admin: { listen: 127.0.0.1:0 }',
    'telemetry: { accessLog: off }',
    '',
  ].join('\n');
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  webTls = await tlsOptionsOf(await writeSvidFiles(ca, WEB, join(dir, 'web')));
  await writeSvidFiles(ca, EDGE, join(dir, 'edge'));
  const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
  const siteCert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  siteCa = site.bundlePem();
  await writeFile(join(dir, 'site.pem'), siteCert.chainPem);
  await writeFile(join(dir, 'site.key'), siteCert.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'site-ca.pem'), siteCa);
  const [appPort, h2Port, otherPort] = await Promise.all([h1App('h1'), h2App(), h1App('other')]);
  const ids = (name: string) => `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\n`;
  const tail = 'authorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n';
  await writeFile(
    join(dir, 'api.yaml'),
    `${ids('api')}inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2Port}, protocol: http2 }\n${tail}`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const inApp = api.ports.get('inbound/app')!;
  const inH2 = api.ports.get('inbound/h2')!;
  await writeFile(join(dir, 'web.yaml'), `${ids('web')}outbound:\n  - { name: h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${inH2}, spiffeId: ${API}, protocol: http2 }\n${tail}`);
  await writeFile(join(dir, 'edge.yaml'), edgeYaml(1, inApp, inH2, otherPort));
  await writeFile(join(dir, 'edge-workers.yaml'), edgeYaml(2, inApp, inH2, otherPort));
  [web, edge, edgeWorkers] = await Promise.all([startProxyProcess(join(dir, 'web.yaml')), startProxyProcess(join(dir, 'edge.yaml')), startProxyProcess(join(dir, 'edge-workers.yaml'), 30_000)]);
  await until('the workers edge is ready', async () => (await fetch(`http://127.0.0.1:${edgeWorkers.admin}/ready`)).status === 200, 20_000);
}, 90_000);

afterAll(async () => {
  await Promise.all([edge?.stop(), edgeWorkers?.stop(), web?.stop(), api?.stop()]);
  for (const s of servers) s.close();
  await cleanup?.();
});

type Where = 'edge' | 'edge-workers' | 'inbound-h2' | 'outbound-h2c';

/** One HTTP/2 request from Node's client, on a session of its own, with exactly these authority fields. */
function h2Get(where: Where, path: string, authority: http2.OutgoingHttpHeaders): Promise<{ status: number; told: Told }> {
  return new Promise((resolve, reject) => {
    const session =
      where === 'inbound-h2' ? http2.connect(`https://127.0.0.1:${api.ports.get('inbound/h2')}`, { ...webTls, checkServerIdentity: () => undefined })
      : where === 'outbound-h2c' ? http2.connect(`http://127.0.0.1:${web.ports.get('outbound/h2')}`)
      : http2.connect(`https://localhost:${(where === 'edge' ? edge : edgeWorkers).ports.get('edge/public')}`, { ca: siteCa });
    session.on('error', reject);
    const req = session.request({ ':path': path, ...authority });
    let status = 0;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      session.close();
      try {
        resolve({ status, told: JSON.parse(body) as Told });
      } catch {
        reject(new Error(`${where} ${path}: ${status} ${body}`));
      }
    });
    req.on('error', reject);
    req.end();
  });
}

const EDGES = [['one process', 'edge'], ['workers: 2', 'edge-workers']] as const;
/** Sessions per case on the workers edge: the kernel spreads new connections over its two workers. */
const ROUNDS = (where: Where) => (where === 'edge-workers' ? 4 : 1);

describe('an HTTP/2 request that names its authority in `host` only', () => {
  test.each(EDGES)('edge (%s), HTTP/1.1 route: routed by that host, and the app gets it as Host', async (_name, where) => {
    for (let i = 0; i < ROUNDS(where); i++) {
      const r = await h2Get(where, '/x', { host: SECRET });
      expect(r.status).toBe(200);
      // The app behind api's sidecar: the secret.example route was taken. Before, Host named that listener's address.
      expect(r.told).toMatchObject({ app: 'h1', host: SECRET, xfh: SECRET });
    }
  });

  test.each(EDGES)('edge (%s), HTTP/2 route: routed by that host, and the app gets it as :authority', async (_name, where) => {
    for (let i = 0; i < ROUNDS(where); i++) {
      const r = await h2Get(where, '/h2/x', { host: SECRET });
      expect(r.status).toBe(200);
      expect(r.told).toMatchObject({ app: 'h2', authority: SECRET, host: null, xfh: SECRET });
    }
  });

  test.each([['sidecar inbound h2', 'inbound-h2'], ['sidecar outbound h2c → inbound h2', 'outbound-h2c']] as const)('%s: the app gets it as :authority', async (_name, where) => {
    const r = await h2Get(where, '/x', { host: 'api.internal:8080' });
    expect(r.status).toBe(200);
    expect(r.told).toMatchObject({ app: 'h2', authority: 'api.internal:8080', host: null });
  });
});

describe('an HTTP/2 request with `:authority` and a different `host`: `:authority` is routed by and told, as before', () => {
  test.each([['edge, HTTP/1.1 route', 'edge', '/x', 'h1'], ['edge, HTTP/2 route', 'edge', '/h2/x', 'h2'], ['sidecar inbound h2', 'inbound-h2', '/x', 'h2'], ['sidecar outbound h2c', 'outbound-h2c', '/x', 'h2']] as const)(
    '%s',
    async (_name, where, path, app) => {
      const r = await h2Get(where, path, { ':authority': SECRET, host: 'other.example' });
      expect(r.status).toBe(200);
      if (app === 'h1') expect(r.told).toMatchObject({ app, host: SECRET });
      else expect(r.told).toMatchObject({ app, authority: SECRET, host: null });
    },
  );

  test('nghttp (sends :authority from the URL and the given host beside it) at the edge: routed by :authority', async () => {
    const r = await run('nghttp', ['-H', `host: ${SECRET}`, `https://localhost:${edge.ports.get('edge/public')}/h2/x`], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    const port = edge.ports.get('edge/public');
    expect(JSON.parse(r.stdout)).toMatchObject({ app: 'other', host: `localhost:${port}`, xfh: `localhost:${port}` });
  });
});

describe("the edge's X-Forwarded-Host and Forwarded host= keep the client's port", () => {
  const curl = (args: string[]) => run('curl', ['-sS', '--cacert', join(dir, 'site-ca.pem'), ...args, `https://localhost:${edge.ports.get('edge/public')}/x`], { timeoutMs: 10_000 });

  test.each([['HTTP/1.1', '--http1.1'], ['HTTP/2 (:authority)', '--http2']])('curl %s with Host: secret.example:8443', async (_name, version) => {
    const r = await curl([version, '-H', `Host: ${SECRET}:8443`]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ app: 'h1', host: `${SECRET}:8443`, xfh: `${SECRET}:8443`, forwarded: `for=127.0.0.1;proto=https;host="${SECRET}:8443"` });
  });

  test('curl with an IPv6 literal and a port: quoted in Forwarded', async () => {
    const r = await curl(['--http1.1', '-H', 'Host: [::1]:8443']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ app: 'other', xfh: '[::1]:8443', forwarded: 'for=127.0.0.1;proto=https;host="[::1]:8443"' });
  });

  test.each(EDGES)('edge (%s): an HTTP/2 client sending only host with a port, on the HTTP/2 route', async (_name, where) => {
    const r = await h2Get(where, '/h2/x', { host: `${SECRET}:8443` });
    expect(r.told).toMatchObject({ app: 'h2', authority: `${SECRET}:8443`, xfh: `${SECRET}:8443`, forwarded: `for=127.0.0.1;proto=https;host="${SECRET}:8443"` });
  });
});
