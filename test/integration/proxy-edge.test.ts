// Edge mode with real processes: curl over HTTP/1.1 and HTTP/2 with SNI for two host names → the edge → two
// mesh sidecars over mTLS → two apps. Client certificates required and checked, authorization on the edge
// client's identity, secure naming (wrong upstream ID → 502), forwarding headers from the real connection,
// HSTS, and the edge certificate replaced on disk and served to the next handshake without a restart.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const A = `spiffe://${TD}/ns/default/sa/a`;
const B = `spiffe://${TD}/ns/default/sa/b`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
const ALICE = 'spiffe://clients.test/alice';
const BOB = 'spiffe://clients.test/bob';

let dir: string;
let cleanup: () => Promise<void>;
let mesh: TestCa;
let web: TestCa;
let clients: TestCa;
const apps: ReturnType<typeof createServer>[] = [];
const procs: ProxyProcess[] = [];
let edge: ProxyProcess;
let edgePort: number;

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '--cacert', join(dir, 'web-ca.pem'), ...args], (e, stdout, stderr) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function as(who: 'alice' | 'bob', host: string, path = '/'): string[] {
  return ['--cert', join(dir, `${who}.pem`), '--key', join(dir, `${who}.key`), '--resolve', `${host}:${edgePort}:127.0.0.1`, `https://${host}:${edgePort}${path}`];
}

async function startApp(name: string): Promise<number> {
  const app = createServer((req, res) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ app: name, path: req.url, headers: req.headers }));
    };
    if (req.url?.startsWith('/slow')) setTimeout(answer, 400);
    else answer();
  });
  apps.push(app);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  return (app.address() as AddressInfo).port;
}

const policy = (name: string, selector: string, from: string[]) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n    - from: [${from.map((f) => JSON.stringify(f)).join(', ')}]\n---\n`;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  mesh = await TestCa.create({ trustDomain: TD });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  clients = await TestCa.create({ trustDomain: 'clients.test', rootName: 'CN=Client CA, O=Test' });
  await writeFile(join(dir, 'web-ca.pem'), web.bundlePem());
  await writeFile(join(dir, 'clients-ca.pem'), clients.bundlePem());
  for (const [who, id] of [['alice', ALICE], ['bob', BOB]] as const) {
    const c = await clients.mintSvid(id);
    await writeFile(join(dir, `${who}.pem`), c.chainPem);
    await writeFile(join(dir, `${who}.key`), c.keyPem, { mode: 0o600 });
  }
  const certA = await web.mintSvid('spiffe://web.test/a', { dnsSans: ['a.example.test'] });
  await writeFile(join(dir, 'a.pem'), certA.chainPem);
  await writeFile(join(dir, 'a.key'), certA.keyPem, { mode: 0o600 });
  const certB = await web.mintSvid('spiffe://web.test/b', { dnsSans: ['b.example.test', 'plain.example.test'] });
  await writeFile(join(dir, 'b.pem'), certB.chainPem);
  await writeFile(join(dir, 'b.key'), certB.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  // An audit-mode DENY being rolled out at the edge: decided and counted, never enforced.
  const auditDeny = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: edge-audit-alice }\nspec:\n  selector: ${EDGE}\n  action: DENY\n  mode: audit\n  rules:\n    - from: ["${ALICE}"]\n      to: { paths: ["/audited/**"] }\n---\n`;
  await writeFile(join(dir, 'policies', 'all.yaml'), policy('a-allow-edge', A, [EDGE]) + policy('b-allow-edge', B, [EDGE]) + policy('edge-allow-alice', EDGE, [ALICE]) + auditDeny);

  const sidecarPorts: Record<string, number> = {};
  for (const [name, id] of [['a', A], ['b', B]] as const) {
    const appPort = await startApp(name);
    await writeSvidFiles(mesh, id, join(dir, name));
    await writeFile(join(dir, `${name}.yaml`), `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
    const p = await startProxyProcess(join(dir, `${name}.yaml`));
    procs.push(p);
    sidecarPorts[name] = p.ports.get('inbound/app')!;
  }
  const plainPort = await startApp('plain');
  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  await writeFile(
    join(dir, 'edge.yaml'),
    [
      'identity:',
      '  files: { certFile: edge/svid.pem, keyFile: edge/key.pem, bundleFile: edge/bundle.pem }',
      'edge:',
      '  - name: public',
      '    listen: 127.0.0.1:0',
      '    certFile: a.pem',
      '    keyFile: a.key',
      '    certificates: [{ serverNames: [b.example.test, plain.example.test], certFile: b.pem, keyFile: b.key }]',
      '    clientCa: clients-ca.pem',
      '    clientTrustDomain: clients.test',
      '    hstsMaxAge: 31536000',
      '    routes:',
      `      - { host: a.example.test, pathPrefix: /, upstream: 127.0.0.1:${sidecarPorts['a']}, spiffeId: ${A} }`,
      `      - { host: a.example.test, pathPrefix: /wrong, upstream: 127.0.0.1:${sidecarPorts['a']}, spiffeId: ${B} }`,
      `      - { host: "*.example.test", pathPrefix: /, upstream: 127.0.0.1:${sidecarPorts['b']}, spiffeId: ${B} }`,
      `      - { host: plain.example.test, pathPrefix: /, upstream: 127.0.0.1:${plainPort}, unsafePlaintext: true }`,
      'authorization: { policiesDir: policies }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
  procs.push(edge);
  edgePort = edge.ports.get('edge/public')!;
}, 60_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  for (const a of apps) a.close();
  await cleanup?.();
});

describe('edge', () => {
  test('HTTP/1.1 with SNI a.example.test reaches app a through its sidecar; forwarding headers come from the connection', async () => {
    const r = await curl(['--http1.1', '-H', 'x-forwarded-for: 6.6.6.6', '-H', 'x-forwarded-client-cert: By=forged', '-H', 'x-real-ip: 6.6.6.6', '-H', 'True-Client-IP: 6.6.6.6', '-H', 'x_client_ip: 6.6.6.6', '-D', '-', ...as('alice', 'a.example.test', '/hello')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/strict-transport-security: max-age=31536000/i);
    const body = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { app: string; path: string; headers: Record<string, string> };
    expect(body.app).toBe('a');
    expect(body.path).toBe('/hello');
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).toBe('https');
    // The client-address fields apps read are the connection's too: a client's claims (any spelling) are dropped.
    expect(body.headers['x-real-ip']).toBe('127.0.0.1');
    expect(Object.keys(body.headers).filter((k) => /client.ip/.test(k))).toEqual([]);
    // The sidecar sanitizes and sets XFCC: the app sees the edge as its caller.
    expect(body.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${A};Hash=[0-9a-f]{64};URI=${EDGE}$`));
  });

  test('HTTP/2 with SNI b.example.test gets b certificate and reaches app b', async () => {
    const r = await curl(['--http2', '-H', 'x-real-ip: 6.6.6.6', '-H', 'cf-connecting-ip: 6.6.6.6', '-w', '\\n%{http_version}', ...as('alice', 'b.example.test', '/x')]);
    expect(r.stderr).toBe('');
    const [json, version] = r.stdout.split('\n');
    expect(version).toBe('2');
    const body = JSON.parse(json!) as { app: string; headers: Record<string, string> };
    expect(body.app).toBe('b');
    expect(body.headers['x-real-ip']).toBe('127.0.0.1');
    expect(body.headers['cf-connecting-ip']).toBeUndefined();
  });

  test('certificate identity, forwarding, Envoy and method or path override fields from a client never reach the app (HTTP/1.1 and HTTP/2)', async () => {
    const forged = ['client-cert: :Zm9v:', 'client-cert-chain: :Zm9v:', 'x-ssl-client-verify: SUCCESS', 'ssl_client_s_dn: CN=admin', 'x-client-cert: forged', 'x-amzn-mtls-clientcert: forged', 'x-arr-clientcert: forged', 'x-forwarded-tls-client-cert: forged', 'x-forwarded-port: 1', 'x-forwarded-ssl: on', 'x-forwarded-scheme: http', 'x-forwarded-prefix: /evil', 'x-forwarded: for=6.6.6.6', 'x-original-url: /admin', 'x-rewrite-url: /admin', 'x-envoy-external-address: 6.6.6.6', 'x-http-method-override: DELETE', 'x_method_override: DELETE', 'Remote-User: admin', 'X-Auth-Request-User: admin', 'X-Forwarded-User: admin', 'X-Goog-Authenticated-User-Email: admin@x', 'Cf-Access-Authenticated-User-Email: admin@x', 'Impersonate-User: admin'];
    for (const version of ['--http1.1', '--http2']) {
      const r = await curl([version, ...forged.flatMap((h) => ['-H', h]), ...as('alice', 'plain.example.test', '/')]);
      const body = JSON.parse(r.stdout) as { app: string; headers: Record<string, string> };
      expect(body.app).toBe('plain');
      const got = Object.keys(body.headers);
      expect(got.filter((k) => /cert|ssl|tls|original|rewrite|envoy|override|method|remote-user|auth-request|goog|cf-access|impersonate/.test(k) && k !== 'x-forwarded-client-cert'), version).toEqual([]);
      expect(got.filter((k) => k.startsWith('x-forwarded')).sort(), version).toEqual(['x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
    }
  });

  test('the client identity reaches the upstream in x-forwarded-client-cert; a forged one is replaced', async () => {
    const r = await curl(['-H', 'x-forwarded-client-cert: URI=spiffe://evil/x', ...as('alice', 'plain.example.test', '/')]);
    const body = JSON.parse(r.stdout) as { app: string; headers: Record<string, string> };
    expect(body.app).toBe('plain');
    expect(body.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${EDGE};Hash=[0-9a-f]{64};Subject="O=Tessera Test";URI=${ALICE}$`));
  });

  test('no client certificate: the handshake fails; a client the policy does not allow gets 403', async () => {
    const none = await curl(['--resolve', `a.example.test:${edgePort}:127.0.0.1`, `https://a.example.test:${edgePort}/`]);
    expect(none.code).not.toBe(0);
    const bob = await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('bob', 'a.example.test', '/')]);
    expect(bob.stdout).toBe('403');
  });

  test('an audit-mode DENY at the edge lets the request through and is counted, as on a sidecar', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('alice', 'a.example.test', '/audited/x')]);
    expect(r.stdout).toBe('200');
    const metrics = await (await fetch(`http://127.0.0.1:${edge.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_authz_decisions_total\{[^}]*decision="deny"[^}]*mode="audit"[^}]*policy="edge-audit-alice"[^}]*\} [1-9]/);
  });

  test('an upstream presenting the wrong SPIFFE ID is refused with 502; unknown host has no route (404)', async () => {
    expect((await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('alice', 'a.example.test', '/wrong')])).stdout).toBe('502');
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--cert', join(dir, 'alice.pem'), '--key', join(dir, 'alice.key'), '-k', '--resolve', `other.test:${edgePort}:127.0.0.1`, `https://other.test:${edgePort}/`]);
    expect(r.stdout).toBe('404');
  });

  test('the certificate file is replaced on disk and served to the next handshake, open connections stay', async () => {
    const alice = { cert: await readFile(join(dir, 'alice.pem')), key: await readFile(join(dir, 'alice.key')) };
    const serialOf = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'a.example.test', ca: web.bundlePem(), ...alice, rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.serialNumber.toLowerCase());
          s.destroy();
        });
        s.on('error', reject);
      }).catch(() => '');
    const held = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'a.example.test', ca: web.bundlePem(), ...alice, ALPNProtocols: ['http/1.1'] });
    const heldSerial = await new Promise<string>((r) => held.once('secureConnect', () => r(held.getPeerX509Certificate()!.serialNumber.toLowerCase())));
    const next = await web.mintSvid('spiffe://web.test/a', { dnsSans: ['a.example.test'] });
    await writeFile(join(dir, 'a.key'), next.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'a.pem'), next.chainPem);
    const want = next.leaf.serialNumber.toLowerCase();
    const deadline = Date.now() + 10_000;
    let seen = '';
    while (seen !== want && Date.now() < deadline) {
      seen = await serialOf();
      if (seen !== want) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toBe(want);
    expect(heldSerial).not.toBe(want);
    // The connection opened before the swap still serves requests.
    const answer = await new Promise<string>((resolve) => {
      let data = '';
      held.on('data', (d) => {
        data += d;
        if (data.includes('"app":"a"')) resolve(data);
      });
      held.write('GET /still HTTP/1.1\r\nhost: a.example.test\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    held.destroy();
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('alice', 'a.example.test', '/')]);
    expect(r.stdout).toBe('200');
  });

  test('a client that gives up mid-request does not cost the pooled upstream mTLS connection', async () => {
    expect((await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('alice', 'a.example.test', '/warm')])).stdout).toBe('200');
    const opened = async () => {
      const m = await (await fetch(`http://127.0.0.1:${edge.admin}/metrics`)).text();
      return m
        .split('\n')
        .filter((l) => l.startsWith('tessera_upstream_connections_opened_total{') && l.includes('direction="edge"'))
        .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    };
    const before = await opened();
    const aborted = await curl(['--max-time', '0.15', ...as('alice', 'a.example.test', '/slow')]);
    expect(aborted.code).not.toBe(0);
    await new Promise((r) => setTimeout(r, 600)); // the slow answer arrives and drains into the void
    expect((await curl(['-o', '/dev/null', '-w', '%{http_code}', ...as('alice', 'a.example.test', '/after')])).stdout).toBe('200');
    expect(await opened()).toBe(before);
  });
});
