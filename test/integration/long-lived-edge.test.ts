// Long-lived traffic through the edge with real clients: Server-Sent Events running well past
// limits.requestTimeout (curl over HTTP/1.1 and HTTP/2) and what does end a stream (limits.streamIdleTimeout, a
// route's `timeout`, both in the access log), response trailers on both client protocols, WebSocket echo (the `ws` npm client) through the edge and
// a sidecar to the app with the upgrade authorized at the edge (a denied one gets 403 and never reaches the app),
// an `http2` route (nghttp, curl; an HTTP/1.1 client there gets 505) and a `grpc` route (@grpc/grpc-js, unary and a bidi stream). Topology: client → edge
// (TLS) → api's sidecar (mTLS; inbound http, http2, grpc) → apps.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';
import { TestCa } from '../helpers/test-ca.js';
import { guardH2Server } from '../../proxy/src/h2/h2-error-guard.js';
import { realTimers } from '../../shared-io/timers.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
/** Short on purpose: every stream below runs several times longer. */
const REQUEST_TIMEOUT_MS = 1_000;
const SSE_EVENTS = 12;
const SSE_GAP_MS = 300;
/** The edge's own: a stalled stream is cut after this, a moving one never. */
const STREAM_IDLE_MS = 2_000;
/** The edge's connection idle timeout: shorter than a quiet gRPC stream's pause, which must not end it. */
const IDLE_MS = 1_000;
/** The `/capped` route's total `timeout`: shorter than the SSE stream, longer than requestTimeout. */
const ROUTE_TIMEOUT_MS = 2_500;
const PROTO = `syntax = "proto3";
package echo.v1;
message Msg { string text = 1; }
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Bidi (stream Msg) returns (stream Msg);
}
`;

type Msg = { text: string };

let dir: string;
let cleanup: () => Promise<void>;
const closers: (() => void)[] = [];
const procs: ProxyProcess[] = [];
let edgePort: number;
let siteCa: string;
/** Paths the HTTP/1.1 app saw, upgrades included. */
const appSeen: string[] = [];
let Echo: grpc.ServiceClientConstructor;

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

/** The HTTP/1.1 app: SSE, a WebSocket echo (ws), anything else answered with its path. */
async function startApp(): Promise<number> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    appSeen.push(req.url ?? '');
    if (req.url?.endsWith('/trailers')) {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part one;');
      res.addTrailers({ 'x-checksum': 'sha256=abc' });
      res.end('part two');
      return;
    }
    if (req.url?.endsWith('/upload')) {
      // Answers only once the whole body is in: a client that stalls its upload is the edge's to cut.
      req.resume();
      req.on('end', () => res.end('stored'));
      return;
    }
    if (req.url?.endsWith('/stall')) {
      // One event, then silence: only the edge's streamIdleTimeout may end it.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      return;
    }
    if (req.url?.endsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`data: tick ${n}\n\n`);
        if (++n === SSE_EVENTS) {
          clearInterval(t);
          res.end();
        }
      }, SSE_GAP_MS);
      res.on('close', () => clearInterval(t));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, version: req.httpVersion }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    appSeen.push(`upgrade ${req.url}`);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m, binary) => ws.send(binary ? m : `echo:${m.toString()}`, { binary })));
  });
  closers.push(() => {
    wss.close();
    server.close();
    server.closeAllConnections();
  });
  return listen(server);
}

async function startH2App(): Promise<number> {
  const server = http2.createServer();
  guardH2Server(server, realTimers); // an app's stream reset by the proxy must not become an uncaught error in this worker
  server.on('stream', (stream, headers) => {
    if (String(headers[':path']).endsWith('/upload')) {
      stream.resume();
      stream.on('end', () => stream.destroyed || stream.closed || stream.respond({ ':status': 200 }, { endStream: true }));
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ path: headers[':path'], version: '2', xff: headers['x-forwarded-for'] ?? null }));
  });
  server.on('sessionError', () => undefined);
  closers.push(() => server.close());
  return listen(server as unknown as Server);
}

async function startGrpcApp(): Promise<number> {
  await writeFile(join(dir, 'echo.proto'), PROTO);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(dir, 'echo.proto'))) as unknown as { echo: { v1: { Echo: grpc.ServiceClientConstructor } } };
  Echo = pkg.echo.v1.Echo;
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: `unary:${call.request.text}` }),
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: m.text.toUpperCase() }));
      call.on('end', () => call.end());
    },
  });
  closers.push(() => server.forceShutdown());
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

const policies = [
  // The edge's outside clients carry no certificate here: they are unauthenticated, allowed only under /allowed
  // and to the gRPC service; /denied is routed but refused by policy.
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: edge-public }\nspec:\n  selector: ${EDGE}\n  action: ALLOW\n  rules:\n    - from: [unauthenticated]\n      to: { paths: ["/allowed/**", "/h2/**", "/echo.v1.Echo/*"] }\n---\n`,
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-from-edge }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["${EDGE}"]\n`,
].join('');

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  const site = await TestCa.create({ trustDomain: 'site.test', rootName: 'CN=Site CA, O=Test' });
  const siteCert = await site.mintSvid('spiffe://site.test/edge', { dnsSans: ['localhost'] });
  siteCa = site.bundlePem();
  await writeFile(join(dir, 'site-ca.pem'), siteCa);
  await writeFile(join(dir, 'site.pem'), siteCert.chainPem);
  await writeFile(join(dir, 'site.key'), siteCert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'all.yaml'), policies);
  const [appPort, h2Port, grpcPort] = [await startApp(), await startH2App(), await startGrpcApp()];
  await writeSvidFiles(mesh, API, join(dir, 'api'));
  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  const common = (name: string, log = 'off', idle = '') =>
    `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nauthorization: { policiesDir: policies, defaultAction: deny }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: ${log} }\nlimits: { requestTimeout: ${REQUEST_TIMEOUT_MS}ms${idle} }\n`;
  await writeFile(
    join(dir, 'api.yaml'),
    `${common('api')}inbound:\n` +
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\n` +
      `  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2Port}, protocol: http2 }\n` +
      `  - { name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${grpcPort}, protocol: grpc }\n`,
  );
  const api = await startProxyProcess(join(dir, 'api.yaml'));
  procs.push(api);
  const sidecar = (n: string) => `127.0.0.1:${api.ports.get(`inbound/${n}`)}`;
  await writeFile(
    join(dir, 'edge.yaml'),
    `${common('edge', join(dir, 'edge-access.log'), `, streamIdleTimeout: ${STREAM_IDLE_MS}ms, idleTimeout: ${IDLE_MS}ms`)}edge:\n  - name: public\n    listen: 127.0.0.1:0\n    certFile: site.pem\n    keyFile: site.key\n    authorize: true\n    routes:\n` +
      `      - { pathPrefix: /allowed, upstream: ${sidecar('app')}, spiffeId: ${API} }\n` +
      `      - { pathPrefix: /denied, upstream: ${sidecar('app')}, spiffeId: ${API} }\n` +
      `      - { pathPrefix: /allowed/capped, upstream: ${sidecar('app')}, spiffeId: ${API}, timeout: ${ROUTE_TIMEOUT_MS}ms }\n` +
      `      - { pathPrefix: /h2, upstream: ${sidecar('h2')}, spiffeId: ${API}, protocol: http2 }\n` +
      `      - { pathPrefix: /echo.v1.Echo, upstream: ${sidecar('grpc')}, spiffeId: ${API}, protocol: grpc }\n`,
  );
  const edge = await startProxyProcess(join(dir, 'edge.yaml'));
  procs.push(edge);
  edgePort = edge.ports.get('edge/public')!;
}, 60_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  for (const c of closers) c();
  await cleanup?.();
});

function runClient(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (e, stdout, stderr) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const url = (path: string) => `https://localhost:${edgePort}${path}`;

describe('streams past limits.requestTimeout', () => {
  test.concurrent.each([
    ['HTTP/1.1', '--http1.1'],
    ['HTTP/2', '--http2'],
  ])('Server-Sent Events over %s run to their end, well past requestTimeout', async (_name, flag) => {
    const started = Date.now();
    const r = await runClient('curl', ['-sS', '-N', flag, '--cacert', join(dir, 'site-ca.pem'), '-w', '\\n%{http_code} %{http_version}', url('/allowed/sse')]);
    const took = Date.now() - started;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('data: '));
    expect(events).toEqual(Array.from({ length: SSE_EVENTS }, (_v, i) => `data: tick ${i}`));
    expect(r.stdout.trim().split('\n').pop()).toBe(`200 ${flag === '--http2' ? '2' : '1.1'}`);
    expect(took).toBeGreaterThan(3 * REQUEST_TIMEOUT_MS);
  });
});

describe('a client that stalls its own upload at the edge (audit 30c F1)', () => {
  test.concurrent.each([
    ['an http route (re-made as HTTP/1.1)', '/allowed/stalled/upload'],
    ['an http2 route', '/h2/stalled/upload'],
  ])('%s: 408 stream_idle_timeout after limits.streamIdleTimeout (not requestTimeout\'s or the upstream\'s 504)', async (_name, path) => {
    const client = http2.connect(url(''), { ca: siteCa });
    client.on('error', () => undefined);
    const started = Date.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = client.request({ ':method': 'PUT', ':path': path }, { endStream: false });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.write('the first half of a body');
    });
    client.destroy();
    expect(status).toBe(408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(STREAM_IDLE_MS - 100);
    const line = await accessLine(path);
    expect(line).toMatchObject({ status: 408, responseFlags: 'stream_idle_timeout', error: 'stream_idle_timeout' });
  });
});

describe('what does end a stream at the edge', () => {
  const sse = (flag: string, path: string) => runClient('curl', ['-sS', '-N', flag, '--cacert', join(dir, 'site-ca.pem'), url(path)]);

  test.concurrent.each([
    ['HTTP/1.1', '--http1.1'],
    ['HTTP/2', '--http2'],
  ])('%s: a stream that stops moving is cut at limits.streamIdleTimeout, logged as 200 with responseFlags', async (_name, flag) => {
    const path = `/allowed/stall-${flag.slice(6)}/stall`;
    const started = Date.now();
    const r = await sse(flag, path);
    const took = Date.now() - started;
    expect(r.code).not.toBe(0); // cut, not ended
    expect(r.stdout).toContain('data: first');
    expect(took).toBeGreaterThanOrEqual(STREAM_IDLE_MS - 100);
    expect(took).toBeLessThan(STREAM_IDLE_MS + 6_000);
    const line = await accessLine(path);
    expect(line['status']).toBe(200);
    expect(line['responseFlags']).toBe('stream_idle_timeout');
  });

  test.concurrent.each([
    ['HTTP/1.1', '--http1.1'],
    ['HTTP/2', '--http2'],
  ])("%s: a route's timeout ends a moving stream at that total, not at requestTimeout", async (_name, flag) => {
    const started = Date.now();
    const r = await sse(flag, '/allowed/capped/sse');
    const took = Date.now() - started;
    expect(r.code).not.toBe(0);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('data: '));
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.length).toBeLessThan(SSE_EVENTS);
    expect(took).toBeGreaterThanOrEqual(ROUTE_TIMEOUT_MS - 100);
  });
});

/** The edge's access-log line for `path` (the log is written in batches: polled). */
async function accessLine(path: string): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await until(`an access-log line for ${path}`, async () => {
    const text = await readFile(join(dir, 'edge-access.log'), 'utf8').catch(() => '');
    found = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e['path'] === path);
    return found !== undefined;
  }, 10_000);
  return found!;
}

test('response trailers reach HTTP/1.1 (curl --raw) and HTTP/2 (nghttp) clients of an HTTP/1.1 route', async () => {
  const h1 = await runClient('curl', ['-sS', '--http1.1', '--raw', '--cacert', join(dir, 'site-ca.pem'), url('/allowed/trailers')]);
  expect(h1.stdout).toMatch(/part one;[\s\S]*part two[\s\S]*\r\n0\r\nx-checksum: sha256=abc\r\n\r\n$/i);
  const h2 = await runClient('nghttp', ['-v', '--no-verify-peer', url('/allowed/trailers')]);
  // -v interleaves frame lines with the body: each part arrives, then the trailer block.
  expect(h2.stdout).toContain('part one;');
  expect(h2.stdout).toContain('part two');
  // nghttp prints the trailer block's fields as it receives them, after the body.
  expect(h2.stdout.slice(h2.stdout.indexOf('part two'))).toMatch(/recv \(stream_id=\d+\) x-checksum: sha256=abc/);
});

describe('WebSocket through the edge and a sidecar', () => {
  function connect(path: string): Promise<WebSocket | { refused: number }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url(path), { ca: siteCa, handshakeTimeout: 5_000 });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        resolve({ refused: res.statusCode ?? 0 });
        res.resume();
      });
      ws.once('error', reject);
    });
  }

  test('the upgrade is authorized at the edge: allowed → 101 and echo both ways over time; denied → 403, never at the app', async () => {
    const ws = await connect('/allowed/ws');
    expect(ws).toBeInstanceOf(WebSocket);
    const socket = ws as WebSocket;
    const got: string[] = [];
    socket.on('message', (m) => got.push(m.toString()));
    // Messages spread over more than requestTimeout: an upgraded connection has no request deadline.
    for (let i = 0; i < 5; i++) {
      socket.send(`m${i}`);
      await new Promise((r) => setTimeout(r, REQUEST_TIMEOUT_MS / 2));
    }
    const big = Buffer.alloc(256 * 1024, 7);
    socket.send(big, { binary: true });
    const deadline = Date.now() + 10_000;
    while (got.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(got.slice(0, 5)).toEqual(['echo:m0', 'echo:m1', 'echo:m2', 'echo:m3', 'echo:m4']);
    expect(got[5]?.length).toBe(big.length);
    const closed = new Promise<number>((r) => socket.once('close', (code) => r(code)));
    socket.close(1000, 'bye');
    expect(await closed).toBe(1000);

    const denied = await connect('/denied/ws');
    expect(denied).toEqual({ refused: 403 });
    expect(appSeen).toContain('upgrade /allowed/ws');
    expect(appSeen.filter((p) => p.includes('/denied'))).toEqual([]);
  });
});

describe('HTTP/2 and gRPC upstreams', () => {
  test('an http2 route: nghttp and curl reach the h2 app over HTTP/2 end to end', async () => {
    const n = await runClient('nghttp', ['--no-verify-peer', url('/h2/hello?x=1')]);
    expect(n.stderr).toBe('');
    expect(JSON.parse(n.stdout)).toEqual({ path: '/h2/hello?x=1', version: '2', xff: '127.0.0.1' });
    const c = await runClient('curl', ['-sS', '--http2', '--cacert', join(dir, 'site-ca.pem'), url('/h2/curl')]);
    expect(JSON.parse(c.stdout).path).toBe('/h2/curl');
    // Not translated: an HTTP/1.1 client on an HTTP/2-only route is told so, and nothing reaches the app.
    const h1 = await runClient('curl', ['-sS', '--http1.1', '--cacert', join(dir, 'site-ca.pem'), '-o', '/dev/null', '-w', '%{http_code}', url('/h2/h1-client')]);
    expect(h1.stdout).toBe('505');
  });

  test('a grpc route: grpc-js unary and a bidi stream that outlives requestTimeout and idleTimeout', async () => {
    const client = new Echo(`localhost:${edgePort}`, grpc.credentials.createSsl(Buffer.from(siteCa))) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
    try {
      const unary = await new Promise<Msg | grpc.ServiceError>((resolve) => (client['Unary'] as (m: Msg, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void)({ text: 'hi' }, (e, r) => resolve(e ?? r)));
      expect(unary).toEqual({ text: 'unary:hi' });
      const call = (client['Bidi'] as () => grpc.ClientDuplexStream<Msg, Msg>)();
      const got: string[] = [];
      call.on('data', (m: Msg) => got.push(m.text));
      const ended = new Promise<grpc.StatusObject>((r) => call.on('status', r));
      for (let i = 0; i < 4; i++) {
        call.write({ text: `b${i}` });
        // One pause longer than the edge's idleTimeout (a quiet stream is not an idle connection), shorter than
        // its streamIdleTimeout.
        await new Promise((r) => setTimeout(r, i === 1 ? IDLE_MS + 500 : REQUEST_TIMEOUT_MS / 2));
      }
      call.end();
      const status = await ended;
      expect(status.code).toBe(grpc.status.OK);
      expect(got).toEqual(['B0', 'B1', 'B2', 'B3']);
    } finally {
      client.close();
    }
  });
});
