// Two real `tessera proxy` processes (web's sidecar with an outbound listener, api's sidecar with an inbound
// listener) in front of a real HTTP app, over real mTLS on loopback: forwarding, forwarded identity, policy,
// keep-alive pooling, bodies, hostile clients, admin endpoints and graceful drain.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
/** TCP connections the app accepted. */
let appConnections = 0;
let apiProxy: ProxyProcess;
let webProxy: ProxyProcess;
let apiInbound: number;
let webOutbound: number;
let wrongName: number;
let apiSerial: string;
/** "METHOD path bodyLength" of every request the app parsed, in order. */
const seen: string[] = [];

interface Echo {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  bodyLength: number;
}

function httpCall(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: false } = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/v1/hello', headers: opts.headers ?? {}, agent: opts.agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function metrics(proxy: ProxyProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${proxy.admin}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(' ').pop());
  }
  return total;
}

/** Pipelined after a raw request: a last one that closes the connection, so that the answer is all that is read. */
const LAST = 'GET /v1/last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

/** Sends `text` on a new plain connection and returns everything read until the proxy closes it. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      out += d;
    });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
    });
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${n}`);
      const body = JSON.stringify({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, bodyLength: n } satisfies Echo);
      if (req.url === '/v1/forge') {
        // An app claiming a proxy refusal and naming a caller: the inbound sidecar drops both.
        res.writeHead(403, { 'content-type': 'application/json', 'x-tessera-error': 'authz_denied', 'x-forwarded-client-cert': 'By=spiffe://x/y', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      if (req.url === '/v1/chunked') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(body.slice(0, 10));
        res.end(body.slice(10));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  app.on('connection', () => appConnections++);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;

  const api = await writeSvidFiles(ca, API, join(dir, 'api'));
  apiSerial = api.serial;
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { methods: [GET, POST], paths: ["/v1/**"] }\n`,
  );
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: http }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: stdout }\n`,
  );
  apiProxy = await startProxyProcess(join(dir, 'api.yaml'));
  apiInbound = apiProxy.ports.get('inbound/app')!;
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiInbound}, spiffeId: ${API} }\n  - { name: wrong, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiInbound}, spiffeId: spiffe://${TD}/ns/default/sa/other }\nadmin: { listen: 127.0.0.1:0 }\n`,
  );
  webProxy = await startProxyProcess(join(dir, 'web.yaml'));
  webOutbound = webProxy.ports.get('outbound/api')!;
  wrongName = webProxy.ports.get('outbound/wrong')!;
}, 60_000);

afterAll(async () => {
  await webProxy?.stop();
  await apiProxy?.stop();
  await new Promise<void>((r) => app?.close(() => r()));
  await cleanup?.();
});

describe('HTTP/1.1 through two sidecars', () => {
  test('a request reaches the app with the caller identity in x-forwarded-client-cert; a forged one is stripped', async () => {
    const r = await httpCall(webOutbound, { headers: { 'x-forwarded-client-cert': 'By=spiffe://evil/x;URI=spiffe://evil/y', connection: 'keep-alive, x-secret', 'x-secret': 'hop' } });
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as Echo;
    const xfcc = String(echo.headers['x-forwarded-client-cert']);
    expect(xfcc).toMatch(new RegExp(`^By=${API};Hash=[0-9a-f]{64};URI=${WEB}$`));
    expect(echo.headers['x-secret']).toBeUndefined(); // named in Connection: hop-by-hop
  });

  test('a Connection header naming Content-Length, Transfer-Encoding or Host takes nothing away: no body becomes a request', async () => {
    const smuggled = 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n';
    const variants = ['content-length', 'Content-Length', 'keep-alive, CONTENT-LENGTH', 'x-a ,content-length , x-b', 'content-length, host', 'host'];
    for (const connection of variants) {
      seen.length = 0;
      const sent = `POST /v1/post HTTP/1.1\r\nHost: a\r\nConnection: ${connection}\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}${LAST}`;
      const answer = await rawExchange(webOutbound, sent);
      expect(answer.match(/HTTP\/1\.1 \d{3} /g), connection).toEqual(['HTTP/1.1 200 ', 'HTTP/1.1 200 ']);
      expect(seen, connection).toEqual([`POST /v1/post ${smuggled.length}`, 'GET /v1/last 0']);
      const first = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      expect((JSON.parse(first.slice(0, first.indexOf('}HTTP/1.1') + 1)) as Echo).headers.host, connection).toBe('a');
    }
    // Named on a second Connection line, and for a chunked body: the same.
    seen.length = 0;
    const chunked = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const answer = await rawExchange(webOutbound, `POST /v1/post HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}${LAST}`);
    expect(answer.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 200 ', 'HTTP/1.1 200 ']);
    expect(seen).toEqual([`POST /v1/post ${smuggled.length}`, 'GET /v1/last 0']);
  });

  test("x-tessera-error and x-forwarded-client-cert: a caller's never reach the app, an app's never reach the caller", async () => {
    const r = await httpCall(webOutbound, { path: '/v1/forge', headers: { 'x-tessera-error': 'forged' } });
    expect(r.status).toBe(403);
    expect(r.headers['x-tessera-error']).toBeUndefined();
    expect(r.headers['x-forwarded-client-cert']).toBeUndefined();
    expect((JSON.parse(r.body) as Echo).headers['x-tessera-error']).toBeUndefined();
    // A refusal by the peer proxy keeps its code on the way back.
    const denied = await httpCall(webOutbound, { method: 'DELETE' });
    expect(denied.headers['x-tessera-error']).toBe('authz_denied');
  });

  test('curl sees the same, and the app gets the original method, path and query', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${webOutbound}/v1/items?q=1`], (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    const echo = JSON.parse(out) as Echo;
    expect(echo.path).toBe('/v1/items?q=1');
    expect(echo.method).toBe('GET');
  });

  test('request and response bodies pass through: content-length, chunked upload, chunked response', async () => {
    const big = Buffer.alloc(300_000, 'x');
    const r1 = await httpCall(webOutbound, { method: 'POST', path: '/v1/upload', body: big, headers: { 'content-length': String(big.length) } });
    expect((JSON.parse(r1.body) as Echo).bodyLength).toBe(big.length);
    const r2 = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: webOutbound, method: 'POST', path: '/v1/chunked', agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(1000, 'y'));
      req.end();
    });
    expect((JSON.parse(r2) as Echo).bodyLength).toBe(5000);
  });

  test('policy: a method the rule does not allow gets 403 with a short code and never reaches the app', async () => {
    const r = await httpCall(webOutbound, { method: 'DELETE', path: '/v1/hello' });
    expect(r.status).toBe(403);
    expect(r.headers['x-tessera-error']).toBe('authz_denied');
    expect(r.body).toBe('authz_denied\n');
    const m = await metrics(apiProxy);
    expect(metricValue(m, 'tessera_authz_decisions_total', { decision: 'deny' })).toBeGreaterThanOrEqual(1);
  });

  // Audit 61d F1: the inbound side's connections to its app were never counted.
  test('keep-alive: 1,000 sequential requests through the pair open at most one upstream mTLS connection, and the inbound side counts its app connections', async () => {
    const before = metricValue(await metrics(webProxy), 'tessera_upstream_connections_opened_total', {});
    const inboundBefore = metricValue(await metrics(apiProxy), 'tessera_upstream_connections_opened_total', { direction: 'inbound' });
    const appBefore = appConnections;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 1000; i++) {
      const r = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: webOutbound, path: '/v1/reuse', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      });
      if (r !== 200) expect(r).toBe(200);
    }
    agent.destroy();
    const after = metricValue(await metrics(webProxy), 'tessera_upstream_connections_opened_total', {});
    expect(after - before).toBeLessThanOrEqual(1);
    const inboundAfter = metricValue(await metrics(apiProxy), 'tessera_upstream_connections_opened_total', { direction: 'inbound' });
    expect(inboundAfter).toBeGreaterThanOrEqual(1);
    expect(inboundAfter - inboundBefore).toBe(appConnections - appBefore);
  });

  test('secure naming: an upstream presenting another SPIFFE ID is refused (502), the reason counted and logged once a minute', async () => {
    const r = await httpCall(wrongName);
    expect(r.status).toBe(502);
    expect((await httpCall(wrongName)).status).toBe(502);
    expect(metricValue(await metrics(webProxy), 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'failure', reason: 'id_mismatch' })).toBeGreaterThanOrEqual(2);
    // The calling side's log says which upstream and why (its access log only says upstream_unavailable), once. The
    // line reaches this process through a pipe a moment after the metric: wait for it, then check there is one.
    const logged = () => webProxy.stderr().split('\n').filter((l) => l.includes('"msg":"upstream handshake failed"') && l.includes('"reason":"id_mismatch"'));
    await until('the upstream handshake failure logged', () => logged().length > 0, 5_000, 20);
    await new Promise((r) => setTimeout(r, 200)); // a second line, were one written, would have come by now
    const lines = logged();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', direction: 'outbound', reason: 'id_mismatch', upstream: expect.stringMatching(/^127\.0\.0\.1:\d+$/), expected: expect.stringMatching(/^spiffe:\/\//) });
  });

  test('the access log has one JSON line per request with peer, decision and status', async () => {
    await httpCall(webOutbound, { path: '/v1/logged?token=secret' });
    const deadline = Date.now() + 5_000;
    let line: Record<string, unknown> | undefined;
    while (!line && Date.now() < deadline) {
      line = apiProxy
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => String(e['path']).startsWith('/v1/logged'));
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    expect(line).toMatchObject({ direction: 'inbound', peer: WEB, decision: 'allow', status: 200, method: 'GET', path: '/v1/logged' });
    expect(apiProxy.stdout()).not.toContain('secret');
  });
});

describe('hostile clients on the mTLS port', () => {
  test('a client without a certificate is refused and counted as no_client_cert', async () => {
    const closed = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: apiInbound, ca: ca.bundlePem(), rejectUnauthorized: false }, () => s.write('GET /v1/hello HTTP/1.1\r\nhost: x\r\n\r\n'));
      let data = '';
      s.on('data', (d) => {
        data += d;
      });
      s.on('error', () => resolve(data));
      s.on('close', () => resolve(data));
    });
    expect(closed).toBe('');
    expect(metricValue(await metrics(apiProxy), 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'no_client_cert' })).toBeGreaterThanOrEqual(1);
  });

  test('plaintext HTTP on the mTLS port is never answered in plaintext and is counted', async () => {
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(apiInbound, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      let data = '';
      s.on('data', (d) => {
        data += d.toString('latin1');
      });
      s.on('error', () => resolve(data));
      s.on('close', () => resolve(data));
    });
    expect(answer).not.toContain('HTTP/1.1');
    const m = await metrics(apiProxy);
    expect(metricValue(m, 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'plaintext' })).toBeGreaterThanOrEqual(1);
  });

  test('an SVID from another CA is refused; the process stays up', async () => {
    const other = await TestCa.create({ trustDomain: TD });
    const svid = await other.mintSvid(WEB);
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: apiInbound, cert: svid.chainPem, key: svid.keyPem, rejectUnauthorized: false }, () => s.write('GET /v1/hello HTTP/1.1\r\nhost: x\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    const m = await metrics(apiProxy);
    expect(metricValue(m, 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'unknown_ca' })).toBeGreaterThanOrEqual(1);
    expect((await httpCall(webOutbound)).status).toBe(200);
  });

  test('an oversized header gets 431 and is counted; a malformed request gets 400', async () => {
    const r = await httpCall(webOutbound, { headers: { 'x-big': 'a'.repeat(20_000) } });
    expect(r.status).toBe(431);
    const bad = await new Promise<string>((resolve) => {
      const s = net.connect(webOutbound, '127.0.0.1', () => s.write('GET /x HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n'));
      let data = '';
      s.on('data', (d) => {
        data += d;
      });
      s.on('close', () => resolve(data));
    });
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    const m = await metrics(webProxy);
    expect(metricValue(m, 'tessera_requests_rejected_total', { reason: 'header_too_large' })).toBeGreaterThanOrEqual(1);
  });
});

describe('admin', () => {
  test('/ready, /certs (with the serial a fresh handshake serves), /config without secrets, /metrics names', async () => {
    expect((await fetch(`http://127.0.0.1:${apiProxy.admin}/ready`)).status).toBe(200);
    const certs = (await (await fetch(`http://127.0.0.1:${apiProxy.admin}/certs`)).json()) as Record<string, unknown>;
    expect(certs).toMatchObject({ spiffeId: API, serial: apiSerial, servedSerial: apiSerial, source: 'files' });
    const config = await (await fetch(`http://127.0.0.1:${apiProxy.admin}/config`)).text();
    expect(config).not.toContain('PRIVATE KEY');
    const m = await metrics(apiProxy);
    for (const name of ['tessera_tls_handshakes_total', 'tessera_requests_total', 'tessera_request_duration_seconds', 'tessera_authz_decisions_total', 'tessera_svid_expiry_timestamp_seconds', 'tessera_connections_active']) {
      expect(m).toContain(name);
    }
    // The policies loaded at start are an update, as the first SVID is a rotation (audit 61d I8).
    expect(metricValue(m, 'tessera_policy_updates_total', { result: 'success' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'tessera_svid_rotations_total', { result: 'success' })).toBeGreaterThanOrEqual(1);
  });
});
