// Permissive inbound listeners (migration to mTLS without an outage) with a real `tessera proxy`: plaintext and
// mTLS on the same port told apart by the first bytes; plaintext callers judged as `unauthenticated` by policy,
// never given an XFCC (a forged one is removed), counted and logged; a strict listener still refuses plaintext;
// garbage and silent first bytes cost a bounded time.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, run, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const OTHER = `spiffe://${TD}/ns/default/sa/other`;
const HANDSHAKE_TIMEOUT_MS = 1_000;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: http.Server;
let tcpApp: net.Server;
/** Requests the HTTP app received, with the headers it saw. */
const seen: { path: string; headers: http.IncomingHttpHeaders }[] = [];
let tcpAppConnections = 0;
let proxy: ProxyProcess;
let permissive: number;
let strict: number;
let permissiveTcp: number;
let web: { certFile: string; keyFile: string };
let other: { certFile: string; keyFile: string };

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}


beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    res.end(`app:${req.url}`);
  });
  tcpApp = net.createServer((s) => {
    tcpAppConnections++;
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
  });
  const appPort = await listen(app);
  const tcpAppPort = await listen(tcpApp);
  await writeSvidFiles(ca, API, join(dir, 'api'));
  web = await writeSvidFiles(ca, WEB, join(dir, 'web'));
  other = await writeSvidFiles(ca, OTHER, join(dir, 'other'));
  permissiveTcp = await freePort();
  await mkdir(join(dir, 'policies'));
  // web (mTLS) may call anything; unauthenticated callers only /public/** on HTTP and the TCP listener's port.
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n` +
      `    - from: [${WEB}]\n    - from: [unauthenticated]\n      to: { paths: ["/public/**"] }\n    - from: [unauthenticated]\n      to: { ports: [${permissiveTcp}] }\n`,
  );
  await writeFile(
    join(dir, 'api.yaml'),
    'identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n' +
      `  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, mtls: permissive }\n` +
      `  - { name: strict, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n` +
      `  - { name: tcp, listen: 127.0.0.1:${permissiveTcp}, forwardTo: 127.0.0.1:${tcpAppPort}, protocol: tcp, mtls: permissive }\n` +
      `authorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\nlimits: { handshakeTimeout: ${HANDSHAKE_TIMEOUT_MS}ms, drainTimeout: 1s }\n`,
  );
  proxy = await startProxyProcess(join(dir, 'api.yaml'));
  permissive = proxy.ports.get('inbound/app')!;
  strict = proxy.ports.get('inbound/strict')!;
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await new Promise<void>((r) => (tcpApp ? tcpApp.close(() => r()) : r()));
  await cleanup?.();
});

/** curl; prints "<status>" on the last line after the body. mTLS when `svid` is given (server cert not checked: the client side is under test). */
async function curl(url: string, opts: { svid?: { certFile: string; keyFile: string }; headers?: string[] } = {}): Promise<{ code: number; status: number; body: string }> {
  const args = ['-s', '--max-time', '10', '-w', '\n%{http_code}', ...(opts.headers ?? []).flatMap((h) => ['-H', h])];
  if (opts.svid) args.push('-k', '--cert', opts.svid.certFile, '--key', opts.svid.keyFile);
  const r = await run('curl', [...args, url]);
  const cut = r.stdout.lastIndexOf('\n');
  return { code: r.code, status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

/** Connects, writes `bytes` (nothing when empty), and resolves with what came back and how long until the proxy closed. */
function rawExchange(port: number, bytes: Buffer): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      if (bytes.length > 0) s.write(bytes);
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the proxy kept the connection open for 15 s (${Buffer.concat(chunks).length} bytes back)`));
    }, 15_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - start });
    });
  });
}

/** True when the proxy closes a plaintext TCP connection without echoing; false when the echo app answers. */
function refusedBeforeEcho(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let echoed = false;
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('hello\n'));
    s.on('data', () => {
      echoed = true;
      s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(!echoed));
  });
}

describe('strict (the default) refuses plaintext', () => {
  test('plaintext HTTP to a strict listener gets no HTTP answer and never reaches the app', async () => {
    const reason = { direction: 'inbound', result: 'failure', reason: 'plaintext' };
    const failures = sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', reason);
    const before = seen.length;
    const r = await curl(`http://127.0.0.1:${strict}/public/x`);
    expect(r.code).not.toBe(0);
    expect(r.status).toBe(0);
    expect(seen.length).toBe(before);
    await until('the plaintext handshake failure is counted', async () => sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', reason) === failures + 1);
    // The same request to the permissive listener is not a handshake failure.
    await curl(`http://127.0.0.1:${permissive}/public/x`);
    expect(sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', reason)).toBe(failures + 1);
  });
});

describe('permissive HTTP listener', () => {
  test('plaintext is allowed where a policy allows unauthenticated callers, with no XFCC (a forged one is removed)', async () => {
    const forged = 'By=spiffe://example.org/ns/default/sa/api;URI=spiffe://example.org/ns/default/sa/web;Hash=00';
    const r = await curl(`http://127.0.0.1:${permissive}/public/x`, { headers: [`x-forwarded-client-cert: ${forged}`] });
    expect(r).toMatchObject({ status: 200, body: 'app:/public/x' });
    const last = seen.at(-1)!;
    expect(last.path).toBe('/public/x');
    expect(last.headers['x-forwarded-client-cert']).toBeUndefined();
  });

  // An outside audit: only XFCC was removed, so an app written for the edge's guarantee trusted a forged
  // x-ssl-client-verify or remote-user from a caller the mesh never authenticated.
  test("a plaintext caller's client-certificate and front-end user fields are removed, as at the edge; an mTLS caller's user fields pass", async () => {
    const forged = ['client-cert: :MIIB:', 'x-ssl-client-verify: SUCCESS', 'X-SSL-Client-S-DN: CN=admin', 'x-client-cert-dn: CN=admin', 'remote-user: admin', 'x-forwarded-user: admin', 'X-Amzn-Oidc-Identity: admin', 'x-goog-authenticated-user-email: a@example.org', 'X-Forwarded-Tls-Client-Cert: MIIB', 'x_forwarded_tls_client_cert_info: CN', 'X-Forwarded-Ssl-Client-Cert: MIIB', 'X-Forwarded-Client-Cert-Chain: MIIB', 'OIDC_CLAIM_sub: admin', 'OIDC-Claim-email: admin@example.org', 'x-harmless: kept'];
    expect((await curl(`http://127.0.0.1:${permissive}/public/forged`, { headers: forged })).status).toBe(200);
    const h = seen.at(-1)!.headers;
    for (const name of ['client-cert', 'x-ssl-client-verify', 'x-ssl-client-s-dn', 'x-client-cert-dn', 'remote-user', 'x-forwarded-user', 'x-amzn-oidc-identity', 'x-goog-authenticated-user-email', 'x-forwarded-tls-client-cert', 'x_forwarded_tls_client_cert_info', 'x-forwarded-ssl-client-cert', 'x-forwarded-client-cert-chain', 'oidc_claim_sub', 'oidc-claim-email']) expect(h[name], name).toBeUndefined();
    expect(h['x-harmless']).toBe('kept');
    // An authenticated mesh peer (the edge's sidecar hop, say) carries a front end's user fields on.
    expect((await curl(`https://127.0.0.1:${permissive}/private`, { svid: web, headers: ['x-forwarded-user: alice'] })).status).toBe(200);
    expect(seen.at(-1)!.headers['x-forwarded-user']).toBe('alice');
  });

  test('plaintext elsewhere is refused with 403 and never reaches the app', async () => {
    const before = seen.length;
    const r = await curl(`http://127.0.0.1:${permissive}/private-denied-line`);
    expect(r.status).toBe(403);
    expect(r.body).toContain('authz_denied');
    expect(seen.length).toBe(before);
    // Its access-log line names no upstream: it went to none (before 2026-12-06 it named the app's address).
    await until('the denied line', () => proxy.stdout().includes('"path":"/private-denied-line"'));
    const line = JSON.parse(proxy.stdout().split('\n').find((l) => l.includes('"path":"/private-denied-line"'))!);
    expect(line).toMatchObject({ status: 403, error: 'authz_denied' });
    expect(line).not.toHaveProperty('upstream');
  });

  test('an mTLS caller on the same port is verified, authorized by its SPIFFE ID and gets the XFCC', async () => {
    const ok = await curl(`https://127.0.0.1:${permissive}/private`, { svid: web, headers: ['x-forwarded-client-cert: URI=forged'] });
    expect(ok).toMatchObject({ status: 200, body: 'app:/private' });
    const xfcc = String(seen.at(-1)!.headers['x-forwarded-client-cert']);
    expect(xfcc).toMatch(new RegExp(`^By=${API};Hash=[0-9a-f]{64};URI=${WEB}$`));
    // Authenticated as another workload: the unauthenticated rules do not apply to it, and it is not web.
    const denied = await curl(`https://127.0.0.1:${permissive}/private`, { svid: other });
    expect(denied.status).toBe(403);
  });

  test('an mTLS caller whose SVID does not verify is refused, not downgraded to unauthenticated', async () => {
    const stranger = await TestCa.create({ trustDomain: TD });
    const files = await writeSvidFiles(stranger, WEB, join(dir, 'stranger'));
    const r = await curl(`https://127.0.0.1:${permissive}/public/x`, { svid: files });
    expect(r.status).toBe(0);
  });

  test('plaintext is counted per listener and as peer="unauthenticated", and access-logged as such', async () => {
    await curl(`http://127.0.0.1:${permissive}/public/count`);
    const m = await metricsText(proxy.admin);
    expect(sumSeries(m, 'tessera_plaintext_connections_total', { listener: 'app' })).toBeGreaterThanOrEqual(3);
    expect(sumSeries(m, 'tessera_plaintext_connections_total', { listener: 'strict' })).toBe(0);
    expect(sumSeries(m, 'tessera_requests_total', { direction: 'inbound', listener: 'app', peer: 'unauthenticated', code: '200' })).toBeGreaterThanOrEqual(2);
    expect(sumSeries(m, 'tessera_requests_total', { direction: 'inbound', listener: 'app', peer: 'unauthenticated', code: '403' })).toBeGreaterThanOrEqual(1);
    expect(sumSeries(m, 'tessera_requests_total', { direction: 'inbound', listener: 'app', peer: WEB })).toBeGreaterThanOrEqual(1);
    await until('the access-log line of the plaintext request', () => proxy.stdout().includes('"path":"/public/count"'));
    const line = proxy.stdout().split('\n').find((l) => l.includes('"path":"/public/count"'))!;
    expect(JSON.parse(line)).toMatchObject({ direction: 'inbound', peer: 'unauthenticated', clientIp: '127.0.0.1', decision: 'allow', status: 200 });
    expect(JSON.parse(line)).not.toHaveProperty('resumed');
    // An mTLS caller's line names its SPIFFE ID and no address.
    const mtlsLine = proxy.stdout().split('\n').find((l) => l.includes(`"peer":"${WEB}"`))!;
    expect(JSON.parse(mtlsLine)).toMatchObject({ peer: WEB, resumed: false });
    expect(JSON.parse(mtlsLine)).not.toHaveProperty('clientIp');
  });
});

describe('permissive: hostile first bytes are bounded', () => {
  test('garbage first bytes are read as plaintext HTTP and refused with 400', async () => {
    const before = seen.length;
    for (const bytes of [Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]), Buffer.from([0x16, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])]) {
      const r = await rawExchange(permissive, bytes);
      expect(r.reply).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(seen.length).toBe(before);
  });

  test('a TLS record header followed by garbage fails as a TLS handshake and is closed', async () => {
    const r = await rawExchange(permissive, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    expect(r.reply).not.toMatch(/^HTTP/);
    expect(r.ms).toBeLessThan(10_000);
  });

  test('a caller that sends nothing, or one byte, is closed after the handshake timeout', async () => {
    const before = sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'timeout' });
    for (const bytes of [Buffer.alloc(0), Buffer.from([0x16])]) {
      const r = await rawExchange(permissive, bytes);
      expect(r.reply).toBe('');
      expect(r.ms).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
      expect(r.ms).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 5_000);
    }
    const after = sumSeries(await metricsText(proxy.admin), 'tessera_tls_handshakes_total', { direction: 'inbound', result: 'failure', reason: 'timeout' });
    expect(after - before).toBe(2);
  });
});

/** Writes `text` once `ready` fires and resolves with the first chunk the peer sends back. */
function firstReply(s: net.Socket, ready: 'connect' | 'secureConnect', text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once(ready, () => s.write(text));
    s.once('data', (d: Buffer) => {
      resolve(d.toString());
      s.destroy();
    });
    s.on('error', reject);
  });
}

describe('permissive TCP listener', () => {
  test('plaintext TCP is relayed when a policy allows unauthenticated callers on that port', async () => {
    const before = tcpAppConnections;
    const s = net.connect({ host: '127.0.0.1', port: permissiveTcp });
    expect(await firstReply(s, 'connect', 'hello\n')).toBe('hello\n');
    expect(tcpAppConnections).toBe(before + 1);
  });

  test('plaintext TCP is closed before any byte reaches the app when no rule allows it', async () => {
    // The same listener with the port rule removed from the policy (hot-reloaded from the directory).
    await writeFile(
      join(dir, 'policies', 'api.yaml'),
      `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n    - from: [unauthenticated]\n      to: { paths: ["/public/**"] }\n`,
    );
    await until('plaintext TCP refused after the policy reload', () => refusedBeforeEcho(permissiveTcp), 15_000, 200);
    const before = tcpAppConnections;
    expect(await refusedBeforeEcho(permissiveTcp)).toBe(true);
    expect(tcpAppConnections).toBe(before);
    const deniedLines = () => proxy.stdout().split('\n').filter((l) => l.includes('"protocol":"tcp"') && l.includes('"error":"authz_denied"'));
    await until('the denied TCP lines', () => deniedLines().length > 0);
    const denied = deniedLines();
    for (const l of denied) expect(JSON.parse(l)).not.toHaveProperty('upstream');
    // mTLS from web is still allowed on it.
    const [cert, key] = await Promise.all([readFile(web.certFile), readFile(web.keyFile)]);
    const s = tls.connect({ host: '127.0.0.1', port: permissiveTcp, cert, key, rejectUnauthorized: false });
    expect(await firstReply(s, 'secureConnect', 'ping\n')).toBe('ping\n');
    expect(tcpAppConnections).toBe(before + 1);
  });
});

describe('config', () => {
  test('/config shows each inbound listener\'s mtls mode (strict by default)', async () => {
    const body = JSON.stringify(await (await fetch(`http://127.0.0.1:${proxy.admin}/config`)).json());
    expect(body).toMatch(/"name":"app"[^}]*"mtls":"permissive"/);
    expect(body).toMatch(/"name":"strict"[^}]*"mtls":"strict"/);
  });

  test('mtls: permissive on an http2 or grpc listener is refused with a coded error naming the key', async () => {
    for (const protocol of ['http2', 'grpc']) {
      const file = join(dir, `bad-${protocol}.yaml`);
      await writeFile(
        file,
        `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:1, protocol: ${protocol}, mtls: permissive }\n`,
      );
      const r = await tessera(['proxy', '--config', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/TESSERA_ERR_CONFIG_INVALID.*inbound\[0\]\.mtls/);
    }
  });
});
