// Long-lived HTTP/1.1 traffic through a real sidecar pair (web's outbound listener → mTLS → api's inbound
// listener → app), with real clients: curl for Server-Sent Events and Expect: 100-continue, the `ws` package for
// WebSocket (client and server). A stream that moves outlives limits.requestTimeout; an idle one is cut by
// limits.streamIdleTimeout and logged as such, naming who closed first; upgrades are authorized like any request,
// relayed with back-pressure and counted as a request (101) plus an upgraded connection.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { type IncomingMessage, createServer, request } from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { stringify } from 'yaml';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
/** How long the SSE stream runs past requestTimeout (1 s here): raise it to soak (production figure: minutes). */
const SSE_RUN_MS = Number(process.env.TESSERA_SSE_RUN_MS ?? 5_000);
const SSE_EVERY_MS = 250;
const REQUEST_TIMEOUT = '1s';
/** The inbound sidecar's stream idle timeout; the outbound's is longer, so the inbound is the one that cuts. */
const INBOUND_IDLE_MS = 2_000;
const OUTBOUND_IDLE_MS = 4_000;

let dir: string;
let cleanup: () => Promise<void>;
let app: ReturnType<typeof createServer>;
let wss: WebSocketServer;
let apiProxy: ProxyProcess;
let webProxy: ProxyProcess;
let webOutbound: number;
/** Upgrade requests the app received (its headers), by path. */
const upgradeHeads: IncomingMessage[] = [];
let floodServer: WebSocket | undefined;

interface AccessLine {
  direction: string;
  path?: string;
  status?: number;
  error?: string;
  responseFlags?: string;
  bytesOut?: number;
}

function accessLines(p: ProxyProcess, path: string): AccessLine[] {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"log":"access"'))
    .map((l) => JSON.parse(l) as AccessLine)
    .filter((l) => l.path === path);
}

async function accessLine(p: ProxyProcess, path: string): Promise<AccessLine> {
  await until(`an access-log line for ${path}`, () => accessLines(p, path).length > 0, 10_000, 100);
  return accessLines(p, path)[0]!;
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const start = Date.now();
  return new Promise((resolve) => execFile('curl', args, { maxBuffer: 16 << 20 }, (e, stdout, stderr) => resolve({ code: e ? Number((e as { code?: number }).code ?? -1) : 0, stdout, stderr, ms: Date.now() - start })));
}

function openWs(path: string): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${webOutbound}${path}`);
}

/** Resolves with the status of an upgrade the server did not accept (ws's 'unexpected-response'). */
function refusedStatus(ws: WebSocket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const ca = await TestCa.create({ trustDomain: TD });
  app = createServer((req, res) => {
    if (req.url === '/v1/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`data: ${n++}\n\n`);
        if (n * SSE_EVERY_MS >= SSE_RUN_MS) {
          clearInterval(t);
          res.end('data: end\n\n');
        }
      }, SSE_EVERY_MS);
      req.on('close', () => clearInterval(t));
      return;
    }
    if (req.url === '/v1/idle') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one and then silence\n\n');
      return;
    }
    if (req.url === '/v1/trailers') {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('body');
      // With an app's copies of what only the proxy says: the inbound sidecar drops those two, keeps the rest.
      res.addTrailers({ 'x-checksum': 'abc123', 'x-tessera-error': 'authz_denied', 'x-forwarded-client-cert': 'By=spiffe://x/y' });
      res.end();
      return;
    }
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
    });
    req.on('end', () => res.end(JSON.stringify({ path: req.url, bodyLength: n })));
  });
  wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws, req) => {
    if (req.url === '/v1/ws-flood') {
      floodServer = ws;
      // Sends until 64 MiB wait in its own buffer: the client reads nothing, so the pair must hold the rest back.
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      const pump = () => {
        while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 64 * 1024 * 1024) ws.send(chunk);
        if (ws.readyState === WebSocket.OPEN) setTimeout(pump, 50);
      };
      pump();
      return;
    }
    ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
  });
  app.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    upgradeHeads.push(req);
    if (req.url === '/v1/ws-200') {
      // Not a WebSocket server after all: a plain answer, and this app connection is done.
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot a ws\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;

  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  const allowWeb = { apiVersion: 'tessera.dev/v1', kind: 'AuthorizationPolicy', metadata: { name: 'api-allow-web' }, spec: { selector: API, action: 'ALLOW', rules: [{ from: [WEB], to: { methods: ['GET', 'POST'], paths: ['/v1/**'] } }] } };
  await writeFile(join(dir, 'policies', 'api.yaml'), stringify(allowWeb));
  /** A sidecar's config: its SVID files, its listeners, the access log on stdout, the test's time limits. */
  const sidecar = async (name: string, listeners: object, streamIdleMs: number): Promise<ProxyProcess> => {
    const config = {
      identity: { files: { certFile: `${name}/svid.pem`, keyFile: `${name}/key.pem`, bundleFile: `${name}/bundle.pem` } },
      ...listeners,
      admin: { listen: '127.0.0.1:0' },
      telemetry: { accessLog: 'stdout' },
      limits: { requestTimeout: REQUEST_TIMEOUT, streamIdleTimeout: `${streamIdleMs}ms` },
    };
    await writeFile(join(dir, `${name}.yaml`), stringify(config));
    return startProxyProcess(join(dir, `${name}.yaml`));
  };
  apiProxy = await sidecar('api', { inbound: [{ name: 'app', listen: '127.0.0.1:0', forwardTo: `127.0.0.1:${appPort}`, protocol: 'http' }], authorization: { policiesDir: 'policies' } }, INBOUND_IDLE_MS);
  webProxy = await sidecar('web', { outbound: [{ name: 'api', listen: '127.0.0.1:0', upstream: `127.0.0.1:${apiProxy.ports.get('inbound/app')!}`, spiffeId: API }] }, OUTBOUND_IDLE_MS);
  webOutbound = webProxy.ports.get('outbound/api')!;
}, 60_000);

afterAll(async () => {
  await webProxy?.stop();
  await apiProxy?.stop();
  for (const c of wss?.clients ?? []) c.terminate();
  app?.closeAllConnections();
  await new Promise<void>((r) => app?.close(() => r()));
  await cleanup?.();
});

describe('streams through the sidecar pair', () => {
  test(`Server-Sent Events for ${SSE_RUN_MS} ms run past requestTimeout (${REQUEST_TIMEOUT}) unharmed, logged as the 200 they were`, async () => {
    const r = await curl(['-sS', '-N', '--max-time', String(SSE_RUN_MS / 1000 + 20), `http://127.0.0.1:${webOutbound}/v1/sse`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = r.stdout.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: end');
    expect(events.length).toBe(SSE_RUN_MS / SSE_EVERY_MS + 1);
    expect(r.ms).toBeGreaterThan(SSE_RUN_MS - 500);
    for (const p of [webProxy, apiProxy]) {
      const line = await accessLine(p, '/v1/sse');
      expect(line).toMatchObject({ status: 200 });
      expect(line.responseFlags).toBeUndefined();
      expect(line.error).toBeUndefined();
    }
  }, 60_000);

  test('a stream with no bytes for streamIdleTimeout is cut; the log says 200, stream_idle_timeout, and who closed first', async () => {
    const r = await curl(['-sS', '-N', '--max-time', '20', `http://127.0.0.1:${webOutbound}/v1/idle`]);
    expect(r.stdout).toContain('data: one and then silence');
    expect(r.code).not.toBe(0); // cut mid-body: curl reports the unfinished chunked body
    expect(r.ms).toBeGreaterThanOrEqual(INBOUND_IDLE_MS - 100);
    expect(r.ms).toBeLessThan(OUTBOUND_IDLE_MS + 1_500);
    // The inbound sidecar (shorter idle timeout) cut it; the outbound one saw its upstream close first.
    expect(await accessLine(apiProxy, '/v1/idle')).toMatchObject({ status: 200, responseFlags: 'stream_idle_timeout', error: 'stream_idle_timeout' });
    expect(await accessLine(webProxy, '/v1/idle')).toMatchObject({ status: 200, responseFlags: 'upstream_closed' });
    expect(sumSeries(await metricsText(apiProxy.admin), 'tessera_requests_rejected_total', { direction: 'inbound', reason: 'stream_idle_timeout' })).toBe(1);
  }, 30_000);

  test('curl with Expect: 100-continue gets the 100 through both sidecars and its body reaches the app', async () => {
    const body = 'x'.repeat(200_000);
    const file = join(dir, 'upload.bin');
    await writeFile(file, body);
    const r = await curl(['-sS', '-v', '--expect100-timeout', '15', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://127.0.0.1:${webOutbound}/v1/upload`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(JSON.parse(r.stdout)).toEqual({ path: '/v1/upload', bodyLength: body.length });
    expect(r.ms).toBeLessThan(10_000); // it did not wait out the expect timeout
  });

  test("response trailers pass through both sidecars, without an app's x-tessera-error or x-forwarded-client-cert", async () => {
    const trailers = await new Promise<NodeJS.Dict<string>>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: webOutbound, path: '/v1/trailers', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.trailers));
      });
      req.on('error', reject);
      req.end();
    });
    expect(trailers['x-checksum']).toBe('abc123');
    expect(trailers['x-tessera-error']).toBeUndefined();
    expect(trailers['x-forwarded-client-cert']).toBeUndefined();
  });
});

describe('WebSocket through the sidecar pair', () => {
  test('an echo: 101 relayed, XFCC on the upgrade request, counted as a request (101) and an upgraded connection', async () => {
    const ws = openWs('/v1/ws');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const upgrade = upgradeHeads.find((h) => h.url === '/v1/ws')!;
    expect(String(upgrade.headers['x-forwarded-client-cert'])).toContain(`URI=${WEB}`);
    for (const p of [webProxy, apiProxy]) expect(sumSeries(await metricsText(p.admin), 'tessera_upgraded_connections')).toBe(1);
    const echoes: string[] = [];
    ws.on('message', (m) => echoes.push(m.toString()));
    const sent = ['hello', 'x'.repeat(300_000), 'bye'];
    for (const m of sent) ws.send(m);
    await until('every echo', () => echoes.length === sent.length, 10_000, 20);
    expect(echoes).toEqual(sent);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.close(1000, 'done');
    expect(await closed).toBe(1000);
    const inbound = await accessLine(apiProxy, '/v1/ws');
    expect(inbound.status).toBe(101);
    expect(inbound.bytesOut).toBeGreaterThan(300_000);
    expect((await accessLine(webProxy, '/v1/ws')).status).toBe(101);
    for (const p of [webProxy, apiProxy]) {
      const m = await metricsText(p.admin);
      expect(sumSeries(m, 'tessera_upgraded_connections')).toBe(0);
      expect(sumSeries(m, 'tessera_requests_total', { code: '101' })).toBe(1);
    }
  }, 30_000);

  test('an upgrade the policy denies is a 403 before any upgrade: the app never sees it', async () => {
    const before = upgradeHeads.length;
    const r = await refusedStatus(openWs('/admin/ws'));
    expect(r.status).toBe(403);
    expect(r.body).toContain('authz_denied');
    expect(upgradeHeads.length).toBe(before);
  });

  test('an app that answers 200 to an upgrade: that answer is relayed and the connection stays HTTP', async () => {
    const r = await refusedStatus(openWs('/v1/ws-200'));
    expect(r).toEqual({ status: 200, body: 'not a ws\n' });
    // The same client connection then carries a plain request.
    const socket = net.connect(webOutbound, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.write('GET /v1/ws-200 HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await until('the 200', () => text.includes('not a ws'), 10_000, 20);
    socket.write('GET /v1/plain HTTP/1.1\r\nHost: api\r\n\r\n');
    await until('the next answer on the same connection', () => text.includes('"path":"/v1/plain"'), 10_000, 20);
    socket.destroy();
  }, 30_000);

  test('a WebSocket peer that stops reading: the pair holds back (bounded memory), then the idle connection is cut', async () => {
    const rss = async (p: ProxyProcess) => sumSeries(await metricsText(p.admin), 'process_resident_memory_bytes');
    const before = [await rss(webProxy), await rss(apiProxy)];
    const ws = openWs('/v1/ws-flood');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.pause(); // the client stops reading its socket
    await until('the app is held back by back-pressure', () => (floodServer?.bufferedAmount ?? 0) >= 32 * 1024 * 1024, 20_000, 50);
    const after = [await rss(webProxy), await rss(apiProxy)];
    // The 32+ MiB the app could not send stayed in the app: each proxy grew by far less.
    for (let i = 0; i < 2; i++) expect(after[i]! - before[i]!).toBeLessThan(24 * 1024 * 1024);
    // Nothing moves any more: the inbound sidecar's streamIdleTimeout ends it, and the outbound one follows.
    expect(await accessLine(apiProxy, '/v1/ws-flood')).toMatchObject({ status: 101, responseFlags: 'stream_idle_timeout' });
    // The outbound one holds its upstream paused (its client reads nothing), so it may not see that close before its
    // own idle timeout ends the connection.
    const outbound = await accessLine(webProxy, '/v1/ws-flood');
    expect(outbound.status).toBe(101);
    expect(['upstream_closed', 'stream_idle_timeout']).toContain(outbound.responseFlags);
    await until('the app sees its WebSocket closed', () => floodServer!.readyState === WebSocket.CLOSED, 10_000, 50);
    ws.terminate(); // the client, never reading, would not see the end of its stream
    for (const p of [webProxy, apiProxy]) expect(sumSeries(await metricsText(p.admin), 'tessera_upgraded_connections')).toBe(0);
  }, 40_000);
});
