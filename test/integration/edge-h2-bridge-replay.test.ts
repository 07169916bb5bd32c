// An HTTP/2 client's request on an edge `http` route (re-made as HTTP/1.1 through the route's pool) goes again, once,
// when its attempt's connection went before any answer and nothing of its body was sent yet, as an HTTP/1.1 client's
// does: a multiplexed stream the upstream's proxy refused unprocessed (RST REFUSED, as a sidecar draining sends for a
// stream that raced its GOAWAY), whatever the method; a reused keep-alive connection the app closed as the request
// came (its idle timeout), for an idempotent method. Before, the HTTP/2 client got 502 where the HTTP/1.1 client's
// request was replayed. And a reset of any other code is a 502 (it crashed the edge: its numeric code was read as a
// string). Real edge process, node:http2 clients; a hostile tessera-mux/1 server and a raw app.
import { writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { MuxCode } from '../../proxy/src/mux/mux-frame.js';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { type RawTarget, firstStatus, oneResponse, rawHttp } from '../helpers/raw-http.js';
import { type RefusingMuxServer, startRefusingMuxServer } from '../helpers/refusing-mux-server.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;

let cleanup: () => Promise<void>;
let web: TestCa;
let hs: RefusingMuxServer;
let edge: ProxyProcess;
/** The raw app: per connection, its requests' lines; the second request on a connection is met with a close. */
const app = { server: undefined as net.Server | undefined, port: 0, connections: [] as string[][] };
let drop: net.Server | undefined;

/** Answers a connection's first request (keep-alive), closes it without answer when the next one comes. */
function startRawApp(): Promise<void> {
  const server = net.createServer((socket) => {
    const lines: string[] = [];
    app.connections.push(lines);
    let buf = '';
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4 + Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0));
        lines.push(head.slice(0, head.indexOf('\r\n')));
        if (lines.length > 1) return void socket.end();
        const body = `app ${lines[0]} on connection ${app.connections.indexOf(lines) + 1}`;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
  app.server = server;
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => {
      app.port = (server.address() as net.AddressInfo).port;
      r();
    }),
  );
}

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const cert = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['mux.test', 'app.test', 'drop.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  hs = await startRefusingMuxServer(mesh, API);
  await startRawApp();
  // An app that closes each connection once a request head is in, without answering.
  drop = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      if (d.includes('\r\n\r\n')) socket.destroy();
    });
  });
  await new Promise<void>((r) => drop!.listen(0, '127.0.0.1', r));
  const dropPort = (drop.address() as net.AddressInfo).port;
  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  await writeFile(
    join(dir, 'edge.yaml'),
    edgeConfigYaml({
      routes: [
        `{ host: mux.test, pathPrefix: /, upstream: 127.0.0.1:${hs.port}, spiffeId: ${API} }`,
        `{ host: app.test, pathPrefix: /, upstream: 127.0.0.1:${app.port}, unsafePlaintext: true }`,
        `{ host: drop.test, pathPrefix: /, upstream: 127.0.0.1:${dropPort}, unsafePlaintext: true }`,
      ],
    }),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  await hs?.close();
  await new Promise<void>((r) => (app.server ? app.server.close(() => r()) : r()));
  drop?.close();
  await cleanup?.();
});

/** One request over a new HTTP/2 connection to the edge: status and body, or how it ended without an answer. */
function h2(host: string, path: string, method = 'GET', body?: string): Promise<{ status: number | string; text: string; error?: string }> {
  return new Promise((resolve) => {
    const s = http2.connect(`https://127.0.0.1:${edge.ports.get('edge/public')!}`, { ca: web.bundlePem(), servername: host, checkServerIdentity: () => undefined });
    let error: string | undefined;
    const done = (r: { status: number | string; text: string }) => {
      clearTimeout(timer);
      if (error !== undefined) Object.assign(r, { error });
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ status: 'no answer', text: '' }), 15_000);
    s.on('error', (e) => done({ status: `session error ${e.message}`, text: '' }));
    const r = s.request({ ':method': method, ':path': path, ':authority': host }, { endStream: body === undefined });
    let text = '';
    let status = 0;
    r.on('response', (h) => {
      status = Number(h[':status']);
      if (h['x-tessera-error'] !== undefined) error = String(h['x-tessera-error']);
    });
    r.setEncoding('latin1');
    r.on('data', (d: string) => (text += d));
    r.on('end', () => done({ status, text }));
    r.on('error', (e) => done({ status: `stream error ${e.message}`, text }));
    if (body !== undefined) r.end(body);
  });
}

describe('a multiplexed stream the upstream refused unprocessed', () => {
  beforeEach(() => {
    hs.plan.refuse = 0;
    hs.plan.partialFirst = false;
    hs.plan.code = MuxCode.Refused;
  });

  test.each(['GET', 'DELETE', 'POST'])('%s without a body, refused once: sent again on a new session and answered 200', async (method) => {
    hs.plan.refuse = 1;
    const path = `/once/${method}`;
    const a = await h2('mux.test', path, method);
    expect(a.status).toBe(200);
    const sessions = hs.carrying(path);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]!.goaway).toBe(true);
    expect(a.text).toBe(`served ${method} ${path} HTTP/1.1 on session ${hs.plan.sessions.indexOf(sessions[1]!) + 1}`);
  });

  test('refused twice: one replay only, then 502', async () => {
    hs.plan.refuse = 2;
    expect((await h2('mux.test', '/twice')).status).toBe(502);
    expect(hs.carrying('/twice')).toHaveLength(2);
    expect((await h2('mux.test', '/after-twice')).status).toBe(200);
  });

  test('refused after the start of an answer came: no replay, 502', async () => {
    hs.plan.refuse = 1;
    hs.plan.partialFirst = true;
    expect((await h2('mux.test', '/partial')).status).toBe(502);
    expect(hs.carrying('/partial')).toHaveLength(1);
  });

  // A reset's error carries the stream's numeric code: read as a string (err.code.startsWith) it crashed the edge,
  // from any sidecar resetting a stream of an HTTP/2 client's request, before or after the head. POSTs: a GET on a
  // stream pooled after an exchange is sent again after any reset before its answer (a stale keep-alive connection's
  // rule, as on the HTTP/1.1 paths).
  test.each([
    ['CANCEL', MuxCode.Cancel, false],
    ['INTERNAL', MuxCode.Internal, false],
    ['CANCEL after part of the head', MuxCode.Cancel, true],
    ['REFUSED after part of the head', MuxCode.Refused, true],
  ] as const)('reset %s: 502, not replayed, and the edge stays up', async (_name, code, partial) => {
    hs.plan.refuse = 1;
    hs.plan.code = code;
    hs.plan.partialFirst = partial;
    const path = `/reset-${code}-${partial}`;
    expect((await h2('mux.test', path, 'POST')).status).toBe(502);
    expect(hs.carrying(path)).toHaveLength(1);
    expect(edge.child.exitCode).toBeNull();
    expect((await h2('mux.test', `${path}/next`)).status).toBe(200);
  });

  test('a POST whose body was sent: no replay, 502', async () => {
    hs.plan.refuse = 1;
    expect((await h2('mux.test', '/with-body', 'POST', 'a body the edge did not keep')).status).toBe(502);
    expect(hs.carrying('/with-body')).toHaveLength(1);
  });
});

describe('a reused keep-alive connection the app closed as the request came', () => {
  test('GET: sent again on a new connection, 200; a POST is not sent twice (502)', async () => {
    // The first request opens a connection the pool keeps; the second is leased it, and the app closes it unanswered.
    expect((await h2('app.test', '/first')).status).toBe(200);
    const before = app.connections.length;
    const a = await h2('app.test', '/stale-get');
    expect(a.status).toBe(200);
    expect(a.text).toBe(`app GET /stale-get HTTP/1.1 on connection ${before + 1}`);
    expect(app.connections.at(-2)!.at(-1)).toBe('GET /stale-get HTTP/1.1');
    // The replay's connection now waits in the pool: a POST leased it, closed unanswered, is not replayed.
    const p = await h2('app.test', '/stale-post', 'POST');
    expect(p.status).toBe(502);
    expect(app.connections.flat().filter((l) => l === 'POST /stale-post HTTP/1.1')).toHaveLength(1);
  });
});

describe('an upstream that closes a new connection without answering', () => {
  test('HTTP/2 and HTTP/1.1 clients alike: 502 upstream_reset (the request reached it), not upstream_unavailable', async () => {
    const a = await h2('drop.test', '/dropped', 'POST');
    expect({ status: a.status, error: a.error }).toEqual({ status: 502, error: 'upstream_reset' });
    const target: RawTarget = { port: edge.ports.get('edge/public')!, tls: { ca: web.bundlePem(), servername: 'drop.test' } };
    const h1 = await rawHttp(target, ['POST /dropped HTTP/1.1\r\nHost: drop.test\r\nContent-Length: 0\r\n\r\n'], { until: oneResponse, capMs: 10_000 });
    expect(firstStatus(h1.text)).toBe(502);
    expect(h1.text).toMatch(/x-tessera-error: upstream_reset/i);
  });
});
