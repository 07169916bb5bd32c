// What Tessera answers itself, through a real proxy process with Node's own HTTP/1.1 and HTTP/2 clients and raw
// sockets. Outside audits:
// - 23c: a sidecar answered 502 to a large upload whose upstream was gone, closed gracefully and stopped reading; the
//   client, still writing its body, never saw the close, and its next request on that keep-alive connection hung
//   until the idle timeout (two minutes). The rest of the body is now read and dropped (a lingering close); the
//   same family for a 403 before the body.
// - 23b: a Host (or :authority) outside its grammar went to the app untouched ("a:443/admin?", "a:1@evil.test"), so
//   an app building its URL from Host served a path the policy never saw; now a 400.
// - 23b, 24a: Tessera's own answers to HEAD carried a body (also those refusing the head itself), read by the client
//   as the start of the next answer.
import { mkdir, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, tlsOptionsOf, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const BODY_BYTES = 8 * 1024 * 1024;

let cleanup: () => Promise<void>;
let app: http.Server;
let h2app: http2.Http2Server;
let proxy: ProxyProcess;
let appReceived = 0;
let appHosts: string[] = [];
let webTls: { cert: string; key: string; ca: string };

beforeAll(async () => {
  const tmp = await makeTempDir();
  cleanup = tmp.cleanup;
  const dir = tmp.dir;
  const ca = await TestCa.create({ trustDomain: TD });
  await writeSvidFiles(ca, API, join(dir, 'api'));
  webTls = await tlsOptionsOf(await writeSvidFiles(ca, WEB, join(dir, 'web')));
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'allow.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [unauthenticated, ${WEB}]\n      to: { paths: ["/ok"] }\n`,
  );
  app = http.createServer((req, res) => {
    appReceived++;
    appHosts.push(req.headers.host ?? '');
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // The h2 inbound speaks h2c to its app.
  h2app = http2.createServer((_req, res) => {
    appReceived++;
    res.end('ok');
  });
  await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
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
      `  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(h2app.address() as AddressInfo).port}, protocol: http2 }`,
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
  h2app?.close();
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

/** Raw bytes to the permissive inbound port; everything it answers until it closes or `ms` pass. */
function raw(bytes: string, ms = 1_500): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(proxy.ports.get('inbound/app')!, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (got += d));
    sock.on('end', done);
    sock.on('error', reject);
    sock.write(bytes);
  });
}

const BAD_HOSTS = ['a.example.test:443/admin?', 'a.example.test:/admin#', 'a.example.test:1@evil.test', 'user@a.example.test', 'a.example.test, evil.test', 'a.example.test\\admin', 'a.example.test:99999', 'a.example.test:+443', 'a.example.test:443 evil', '[::1', 'a%2Fadmin'];

test('HTTP/1.1: a Host outside uri-host [":" port] is a 400 that never reaches the app; a valid one goes on as sent', async () => {
  const before = appReceived;
  for (const host of BAD_HOSTS) {
    const answer = await raw(`GET /ok HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(answer, host).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer, host).toContain('x-tessera-error: bad_request');
  }
  expect(appReceived).toBe(before);
  appHosts = [];
  for (const host of ['a.example.test', 'A.Example.Test:8443', '[::1]:80', '127.0.0.1']) {
    expect(await raw(`GET /ok HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`), host).toMatch(/^HTTP\/1\.1 200 /);
  }
  expect(appHosts).toEqual(['a.example.test', 'A.Example.Test:8443', '[::1]:80', '127.0.0.1']);
});

test('HTTP/1.1: Tessera answers HEAD without a body, and the next answer on the connection is read as sent', async () => {
  // A policy denial (403) to HEAD, then a GET pipelined behind it.
  const answer = await raw('HEAD /denied HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const [first, second] = answer.split(/(?=HTTP\/1\.1 )/);
  expect(first).toMatch(/^HTTP\/1\.1 403 [\s\S]*content-length: 13\r\n[\s\S]*\r\n\r\n$/);
  expect(second).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok$/);
  // Refused at the head (a bad Host, an unsupported coding, a head too large): head only, then the close.
  for (const bad of ['Host: a/x\r\n', 'Host: a\r\nTransfer-Encoding: chunked, identity\r\n', `Host: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n`]) {
    const refused = await raw(`HEAD /ok HTTP/1.1\r\n${bad}\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(refused, bad.slice(0, 40)).toMatch(/^HTTP\/1\.1 4\d\d [^\r]*\r\n(?:[^\r]+\r\n)*connection: close\r\n\r\n$/);
  }
  // A 502 from the outbound whose upstream is gone: a head only.
  const res = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.ports.get('outbound/gone')!, method: 'HEAD', path: '/x', agent: false }, (r) => {
      let bytes = 0;
      r.on('data', (d: Buffer) => (bytes += d.length));
      r.on('end', () => resolve({ status: r.statusCode!, bytes }));
    });
    req.on('error', reject);
    req.end();
  });
  expect(res).toEqual({ status: 502, bytes: 0 });
});

test('HTTP/2: a malformed :authority is a 400 (or a reset by nghttp2); a HEAD refused locally ends with its head, no stream error', async () => {
  const session = http2.connect(`https://127.0.0.1:${proxy.ports.get('inbound/h2')!}`, { ...webTls, checkServerIdentity: () => undefined });
  try {
    const ask = (headers: http2.OutgoingHttpHeaders) =>
      new Promise<{ status: number; bytes: number; error: string | undefined }>((resolve) => {
        const req = session.request(headers, { endStream: true });
        let status = 0;
        let bytes = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => (bytes += d.length));
        req.on('end', () => resolve({ status, bytes, error: undefined }));
        req.on('error', (e: NodeJS.ErrnoException) => resolve({ status, bytes, error: e.code }));
      });
    const before = appReceived;
    // nghttp2 itself resets a stream whose :authority has a byte outside the authority characters (a space, "@");
    // what it lets through (a port out of range or with a sign, a host header) is Tessera's 400.
    for (const authority of ['a.example.test:443 evil', 'a.example.test:1@evil.test', 'a.example.test:443/admin?']) {
      const r = await ask({ ':method': 'GET', ':path': '/ok', ':authority': authority });
      expect(r.status === 400 || r.error === 'ERR_HTTP2_STREAM_ERROR', `${authority}: ${JSON.stringify(r)}`).toBe(true);
    }
    for (const authority of ['a.example.test:99999', 'a.example.test:+443']) {
      expect((await ask({ ':method': 'GET', ':path': '/ok', ':authority': authority })).status, authority).toBe(400);
    }
    expect(appReceived).toBe(before);
    expect(await ask({ ':method': 'GET', ':path': '/ok', ':authority': 'a.example.test:8443' })).toEqual({ status: 200, bytes: 2, error: undefined });
    expect(await ask({ ':method': 'HEAD', ':path': '/denied', ':authority': 'a.example.test' })).toEqual({ status: 403, bytes: 0, error: undefined });
  } finally {
    session.close();
  }
});
