// Exchanges still in flight when a proxy's drain deadline (limits.drainTimeout) passes are cut, and the proxy that
// cut them logs each one (responseFlags drain_timeout) before it exits: an HTTP/1.1 request waiting for a slow app
// and an upgraded (101) connection, over the multiplexed transport (inbound) and on plain sockets (outbound), and
// HTTP/2 and gRPC streams. They used to be recorded from their sockets' 'close' events after the access log had
// been closed, so they were lost. Real processes: web's sidecar → mTLS → api's sidecar → an app that never answers.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let ca: TestCa;
let cleanup: () => Promise<void>;
let app: ReturnType<typeof createServer>;
let h2app: http2.Http2Server;
/** Request paths the apps have seen. */
const seen: string[] = [];
const started: ProxyProcess[] = [];
/** The apps' connections and sessions, destroyed at the end (upgraded and h2 ones keep a server open). */
const appConns = new Set<{ destroy(): void }>();

interface AccessLine {
  readonly direction: string;
  readonly protocol: string;
  readonly path?: string;
  readonly status?: number;
  readonly responseFlags?: string;
  readonly error?: string;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`,
  );
  // Never answers a plain request; answers an upgrade with 101 and then echoes.
  app = createServer((req) => seen.push(req.url ?? ''));
  app.on('upgrade', (req, socket: net.Socket) => {
    seen.push(req.url ?? '');
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  app.on('connection', (s: net.Socket) => appConns.add(s));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // Sends the response head of /h2/head, never a stream's end.
  h2app = http2.createServer();
  h2app.on('session', (s) => appConns.add(s));
  h2app.on('stream', (stream, headers) => {
    seen.push(String(headers[':path']));
    stream.on('error', () => undefined);
    if (headers[':path'] === '/h2/head') stream.respond({ ':status': 200 });
  });
  await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
}, 30_000);

afterAll(async () => {
  for (const p of started) await p.stop(2_000);
  for (const c of appConns) c.destroy();
  await new Promise((r) => app?.close(r));
  await new Promise((r) => h2app?.close(r));
  await cleanup?.();
});

const portOf = (s: net.Server | http2.Http2Server) => (s.address() as net.AddressInfo).port;

async function startProxy(name: string, body: string): Promise<ProxyProcess> {
  await writeFile(
    join(dir, `${name}.yaml`),
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: ${name}-access.log }\nlimits: { drainTimeout: 1s }\nupgrades: [echo]\n`,
  );
  const p = await startProxyProcess(join(dir, `${name}.yaml`));
  started.push(p);
  return p;
}

async function accessLines(name: string): Promise<AccessLine[]> {
  const text = await readFile(join(dir, `${name}-access.log`), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AccessLine);
}

/** A GET that stays open until the proxy cuts it (the app never answers); resolves when its connection ends. */
function slowGet(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('close', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
}

/** An upgraded connection, echoing, until the proxy cuts it; resolves once the 101 came back. */
function upgraded(port: number, path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`));
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => (d.toString('latin1').startsWith('HTTP/1.1 101') ? resolve(s) : reject(new Error(d.toString('latin1')))));
  });
}

/** HTTP/2 streams (one gRPC) left open on one h2c session. */
function h2Streams(port: number, paths: readonly { path: string; grpc?: boolean }[]): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  for (const { path, grpc } of paths) {
    const s = session.request({ ':method': 'POST', ':path': path, ...(grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}) }, { endStream: false });
    s.on('error', () => undefined);
    s.resume();
  }
  return session;
}

const cut = (lines: readonly AccessLine[], path: string) => lines.find((l) => l.path === path);

test('SIGTERM on the inbound side: HTTP/1.1 over the multiplexed transport, an upgraded connection and HTTP/2 and gRPC streams cut at the drain deadline are logged', async () => {
  const api = await startProxy(
    'api',
    `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(app)} }\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(h2app)}, protocol: http2 }\nauthorization: { policiesDir: policies }\n`,
  );
  const web = await startProxy(
    'web',
    `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n  - { name: api2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/h2')}, spiffeId: ${API}, protocol: http2 }\n`,
  );
  const out = web.ports.get('outbound/api')!;
  const get = slowGet(out, '/in/slow');
  const ws = await upgraded(out, '/in/ws');
  const h2 = h2Streams(web.ports.get('outbound/api2')!, [{ path: '/h2/waiting' }, { path: '/h2/head' }, { path: '/grpc.Svc/Call', grpc: true }]);
  await until('every exchange reached the apps', () => ['/in/slow', '/in/ws', '/h2/waiting', '/h2/head', '/grpc.Svc/Call'].every((p) => seen.includes(p)), 5_000, 20);
  expect(await api.stop()).toBe(0);
  await get;
  ws.destroy();
  h2.destroy();
  const lines = await accessLines('api');
  expect(cut(lines, '/in/slow')).toMatchObject({ direction: 'inbound', protocol: 'http', status: 499, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/in/slow')?.error).toBeUndefined();
  expect(cut(lines, '/in/ws')).toMatchObject({ direction: 'inbound', protocol: 'http', status: 101, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/h2/waiting')).toMatchObject({ direction: 'inbound', protocol: 'http2', status: 499, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/h2/head')).toMatchObject({ direction: 'inbound', protocol: 'http2', status: 200, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/grpc.Svc/Call')).toMatchObject({ direction: 'inbound', protocol: 'grpc', responseFlags: 'drain_timeout' });
  await web.stop();
}, 60_000);

test('SIGTERM on the outbound side: a plain HTTP/1.1 request, an upgraded connection and HTTP/2 streams cut at the drain deadline are logged', async () => {
  // Its own names (api2, web2): the first test's files stay as they were.
  await writeSvidFiles(ca, API, join(dir, 'api2'));
  await writeSvidFiles(ca, WEB, join(dir, 'web2'));
  const api = await startProxy(
    'api2',
    `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(app)} }\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${portOf(h2app)}, protocol: http2 }\nauthorization: { policiesDir: policies }\n`,
  );
  const web = await startProxy(
    'web2',
    `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n  - { name: api2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/h2')}, spiffeId: ${API}, protocol: http2 }\n`,
  );
  const out = web.ports.get('outbound/api')!;
  const get = slowGet(out, '/out/slow');
  const ws = await upgraded(out, '/out/ws');
  const h2 = h2Streams(web.ports.get('outbound/api2')!, [{ path: '/h2/out-waiting' }]);
  await until('every exchange reached the apps', () => ['/out/slow', '/out/ws', '/h2/out-waiting'].every((p) => seen.includes(p)), 5_000, 20);
  expect(await web.stop()).toBe(0);
  await get;
  ws.destroy();
  h2.destroy();
  const lines = await accessLines('web2');
  expect(cut(lines, '/out/slow')).toMatchObject({ direction: 'outbound', protocol: 'http', status: 499, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/out/ws')).toMatchObject({ direction: 'outbound', protocol: 'http', status: 101, responseFlags: 'drain_timeout' });
  expect(cut(lines, '/h2/out-waiting')).toMatchObject({ direction: 'outbound', protocol: 'http2', status: 499, responseFlags: 'drain_timeout' });
  await api.stop();
}, 60_000);
