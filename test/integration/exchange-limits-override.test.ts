// A listener's or an edge route's own `requestTimeout` and `minRequestBodyRate` over the proxy-wide limits (audit
// 62b I1, I2): a long-poll through a listener or route with a longer requestTimeout is answered where its neighbours
// are cut 504, and a sensor's trickled upload through one with minRequestBodyRate 0 goes through where its
// neighbours are cut 408. Proxy-wide here: requestTimeout 1s, headersTimeout 1s, minRequestBodyRate 100,000 B/s.
// Real processes: the caller's sidecar (outbound listeners over mTLS to api's inbound), an edge (HTTP/1.1 and HTTP/2
// clients on plaintext routes), a Node app.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const LIMITS = 'limits: { requestTimeout: 1s, headersTimeout: 1s, minRequestBodyRate: 100000 }';

let dir: string;
let cleanup: () => Promise<void>;
let app: Server;
let api: ProxyProcess;
let web: ProxyProcess;
let edge: ProxyProcess;
let webCa: TestCa;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // /poll answers after 2 s; /upload once the body has ended.
  app = createServer((req, res) => {
    req.resume();
    req.on('end', () => (req.url === '/poll' ? setTimeout(() => res.end('polled\n'), 2_000) : res.end('ok\n')));
  });
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await writeSvidFiles(ca, `spiffe://${TD}/ns/edge/sa/gateway`, join(dir, 'edge'));
  webCa = await TestCa.create({ trustDomain: 'web.test' });
  const cert = await webCa.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'allow.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\nauthorization: { policiesDir: policies }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
  api = await startProxyProcess(join(dir, 'api.yaml'));
  const up = `upstream: 127.0.0.1:${api.ports.get('inbound/app')!}, spiffeId: ${API}`;
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: plain, listen: 127.0.0.1:0, ${up} }\n  - { name: poll, listen: 127.0.0.1:0, ${up}, requestTimeout: 5s }\n  - { name: sensor, listen: 127.0.0.1:0, ${up}, minRequestBodyRate: 0 }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n${LIMITS}\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
  await writeFile(
    join(dir, 'edge.yaml'),
    edgeConfigYaml({
      routes: [
        `{ host: plain.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }`,
        `{ host: poll.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true, requestTimeout: 5s }`,
        `{ host: sensor.test, pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true, minRequestBodyRate: 0 }`,
      ],
      extra: [LIMITS],
    }),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await web?.stop();
  await api?.stop();
  app?.close();
  await cleanup?.();
});

/** An HTTP/1.1 request on a plain socket: GET /poll, or a POST /upload of 12 bytes sent 3 at a time every 700 ms. */
function http1(port: number, host: string, what: 'poll' | 'upload'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    s.on('close', () => resolve(`${text.slice(9, 12)} ${/x-tessera-error: (\S+)/i.exec(text)?.[1] ?? ''}`.trim()));
    s.on('error', () => undefined);
    s.setTimeout(15_000, () => s.destroy());
    if (what === 'poll') return void s.write(`GET /poll HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    s.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nContent-Length: 12\r\n\r\n`);
    let sent = 0;
    const tick = setInterval(() => {
      if (s.destroyed || sent >= 12) return clearInterval(tick);
      s.write('abc');
      sent += 3;
    }, 700);
  });
}

test('outbound listeners: a long-poll answered on the one with requestTimeout 5s, cut 504 on the other; a trickled upload through on the one with minRequestBodyRate 0, cut 408 on the other', async () => {
  const port = (name: string) => web.ports.get(`outbound/${name}`)!;
  const [poll, pollCut, sensor, sensorCut] = await Promise.all([http1(port('poll'), 'api', 'poll'), http1(port('plain'), 'api', 'poll'), http1(port('sensor'), 'api', 'upload'), http1(port('plain'), 'api', 'upload')]);
  expect({ poll, pollCut, sensor, sensorCut }).toEqual({ poll: '200', pollCut: '504 request_timeout', sensor: '200', sensorCut: '408 request_body_timeout' });
}, 30_000);

test('edge routes, HTTP/1.1 and HTTP/2 clients: the same per route', async () => {
  const edgePort = edge.ports.get('edge/public')!;
  const h2 = http2.connect(`https://127.0.0.1:${edgePort}`, { ca: webCa.bundlePem(), servername: 'edge.test', checkServerIdentity: () => undefined });
  h2.on('error', () => undefined);
  const h2poll = (host: string) =>
    new Promise<string>((resolve) => {
      const r = h2.request({ ':path': '/poll', ':authority': host });
      r.on('response', (h) => resolve(`${h[':status']} ${h['x-tessera-error'] ?? ''}`.trim()));
      r.on('error', () => resolve('error'));
      r.resume();
    });
  const tlsPoll = (host: string) =>
    new Promise<string>((resolve) => {
      const s = tls.connect({ port: edgePort, host: '127.0.0.1', servername: 'edge.test', ca: webCa.bundlePem(), ALPNProtocols: ['http/1.1'] });
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      s.on('close', () => resolve(`${text.slice(9, 12)} ${/x-tessera-error: (\S+)/i.exec(text)?.[1] ?? ''}`.trim()));
      s.on('error', () => undefined);
      s.write(`GET /poll HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
  try {
    const got = await Promise.all([tlsPoll('poll.test'), tlsPoll('plain.test'), h2poll('poll.test'), h2poll('plain.test')]);
    expect(got).toEqual(['200', '504 request_timeout', '200', '504 request_timeout']);
  } finally {
    h2.close();
  }
}, 30_000);
