// The connection-specific fields of HTTP/2 to HTTP/2 forwarding (http1/connection-fields.ts), through a real edge
// process to real h2c apps. A request's TE passes only as `te: trailers`, in whatever case the client wrote it
// (RFC 9113 section 8.2.2; it was dropped unless lower case); a TE of another value is a malformed request, reset
// before any app sees it. A response's TE never reaches the client (TE belongs in requests; `te: trailers` was
// relayed, `te: Trailers` made the response a 502), and a response's Host does, as on the HTTP/1.1 upstream path
// (it was dropped only because the request list served responses too). A node:http2 client where it can send the
// request, raw frames over TLS where node:http2 will not.
import { writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { h2Frame, hpackBlock, rawH2App } from '../helpers/raw-h2-app.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

let dir: string;
let cleanup: () => Promise<void>;
let web: TestCa;
let edge: ProxyProcess;
let port: number;
const servers: net.Server[] = [];
/** The `te` each request reached the app with, by path ('absent' when none). */
const appTe = new Map<string, string>();

/** An h2c app: records the request's te; answers 200 with the response fields /resp-te and /resp-host ask for. */
function startApp(): Promise<number> {
  const app = http2.createServer();
  app.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    appTe.set(path, headers.te === undefined ? 'absent' : String(headers.te));
    const extra: http2.OutgoingHttpHeaders = path === '/resp-te' ? { te: 'trailers' } : path === '/resp-host' ? { host: 'app.test' } : {};
    stream.respond({ ':status': 200, ...extra }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(path === '/resp-te' ? { te: 'trailers', 'x-fine': '1' } : { 'x-fine': '1' }));
    stream.end('ok');
  });
  return listen(app);
}

/** A raw h2c app answering `te: Trailers` in its head, which node:http2 will not send (nor relay: respond() throws). */
function startRawApp(): Promise<number> {
  return listen(rawH2App((s, id) => s.write(h2Frame(1, 0x4 | 0x1, id, hpackBlock([[':status', '200'], ['te', 'Trailers'], ['x-other', 'visible']])))));
}

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

function h2Get(path: string, authority: string, extra: http2.OutgoingHttpHeaders = {}): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: web.bundlePem(), checkServerIdentity: () => undefined });
    session.on('error', reject);
    const req = session.request({ ':path': path, ':authority': authority, ...extra });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => {
      headers = h;
    });
    req.on('trailers', (h) => {
      trailers = h;
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      session.close();
      resolve({ headers, trailers, body });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request node:http2's client will not send (its te): raw frames over TLS. The first frame type on stream 1 and, for RST_STREAM, its code. */
function rawRequest(path: string, te: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: web.bundlePem(), servername: 'edge.example.test', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.on('error', reject);
    const fields: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', 'h2.example.test'], ['te', te]];
    s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0), h2Frame(1, 0x4 | 0x1, 1, hpackBlock(fields))]));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        const [type, id] = [buf[3]!, buf.readUInt32BE(5) & 0x7fffffff];
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (id !== 1) continue;
        s.destroy();
        return resolve(type === 3 ? `RST_STREAM ${payload.readUInt32BE(0)}` : type === 1 ? 'HEADERS' : `type ${type}`);
      }
    });
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: 'example.org' });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  const server = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.example.test'] });
  await writeFile(join(dir, 'edge-server.pem'), server.chainPem);
  await writeFile(join(dir, 'edge-server.key'), server.keyPem, { mode: 0o600 });
  await writeSvidFiles(mesh, 'spiffe://example.org/ns/edge/sa/gateway', join(dir, 'edge'));
  const app = await startApp();
  const rawApp = await startRawApp();
  await writeFile(
    join(dir, 'edge.yaml'),
    [
      'identity:',
      '  files: { certFile: edge/svid.pem, keyFile: edge/key.pem, bundleFile: edge/bundle.pem }',
      'edge:',
      '  - name: public',
      '    listen: 127.0.0.1:0',
      '    certFile: edge-server.pem',
      '    keyFile: edge-server.key',
      '    routes:',
      `      - { host: raw.example.test, pathPrefix: /, upstream: 127.0.0.1:${rawApp}, unsafePlaintext: true, protocol: http2 }`,
      `      - { host: h2.example.test, pathPrefix: /, upstream: 127.0.0.1:${app}, unsafePlaintext: true, protocol: http2 }`,
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
  port = edge.ports.get('edge/public')!;
}, 60_000);

afterAll(async () => {
  await edge?.stop();
  for (const s of servers) s.close();
  await cleanup?.();
});

test('a request\'s te: trailers reaches the app; none is added to a request without one', async () => {
  expect((await h2Get('/te-lower', 'h2.example.test', { te: 'trailers' })).body).toBe('ok');
  expect(appTe.get('/te-lower')).toBe('trailers');
  expect((await h2Get('/te-none', 'h2.example.test')).body).toBe('ok');
  expect(appTe.get('/te-none')).toBe('absent');
});

test('te: Trailers (the token in another case, which node:http2 will not send) reaches the app as te: trailers', async () => {
  expect(await rawRequest('/te-upper', 'Trailers')).toBe('HEADERS');
  expect(appTe.get('/te-upper')).toBe('trailers');
});

test('a te other than trailers makes the request malformed: reset with PROTOCOL_ERROR, the app never sees it', async () => {
  for (const [path, te] of [['/te-gzip', 'gzip'], ['/te-list', 'trailers, gzip']] as const) {
    expect(await rawRequest(path, te), te).toBe(`RST_STREAM ${http2.constants.NGHTTP2_PROTOCOL_ERROR}`);
    expect(appTe.has(path), te).toBe(false);
  }
});

test('an app\'s te: trailers, in its head and its trailers, never reaches the client; the rest does', async () => {
  const r = await h2Get('/resp-te', 'h2.example.test');
  expect(r.headers[':status']).toBe(200);
  expect(r.headers.te).toBeUndefined();
  expect(r.trailers.te).toBeUndefined();
  expect(r.trailers['x-fine']).toBe('1');
  expect(r.body).toBe('ok');
});

test('an app\'s te: Trailers (which node:http2\'s respond() throws on) is dropped, the response served, not a 502', async () => {
  const r = await h2Get('/', 'raw.example.test');
  expect(r.headers[':status']).toBe(200);
  expect(r.headers['x-tessera-error']).toBeUndefined();
  expect(r.headers.te).toBeUndefined();
  expect(r.headers['x-other']).toBe('visible');
});

test('an app\'s Host response field reaches the client, as from an HTTP/1.1 app (edge-h2-hop-by-hop.test.ts)', async () => {
  const r = await h2Get('/resp-host', 'h2.example.test');
  expect(r.headers[':status']).toBe(200);
  expect(r.headers.host).toBe('app.test');
});
