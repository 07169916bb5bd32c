// Identity forgery and confinement with real processes and real TLS on loopback: an edge whose partner CA
// (`clientCa`) mints certificates carrying mesh SPIFFE IDs, hostile partner leaves (CA:TRUE, keyCertSign, two URI
// SANs, SAN strings that smuggle separators, duplicate or unknown critical extensions), an XFCC that cannot be
// forged through a SAN, sidecars refusing peers that RFC 5280 or the X509-SVID rules say to refuse, and a TLS 1.2
// client that renegotiates under an established connection (edge and sidecar close it).
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { type BrokenKind, type MintOptions, TestCa } from '../helpers/test-ca.js';
import { tlsGet } from '../helpers/tls-get.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const MESH_A = `spiffe://${TD}/ns/default/sa/a`;
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
const SIDECAR = `spiffe://${TD}/ns/default/sa/api`;
const PARTNER_TD = 'partner.example';
const PARTNER_OK = `spiffe://${PARTNER_TD}/ok`;

let dir: string;
let cleanup: () => Promise<void>;
let mesh: TestCa;
let partner: TestCa;
let web: TestCa;
let app: ReturnType<typeof createServer>;
const procs: ProxyProcess[] = [];
let ports: { confined: number; unconfined: number; sidecar: number; sidecar12: number; edgeAdmin: number; sidecarAdmin: number };

const policy = (name: string, selector: string, from: string[]) =>
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${selector}\n  action: ALLOW\n  rules:\n    - from: [${from.map((f) => JSON.stringify(f)).join(', ')}]\n---\n`;

interface Answer {
  readonly status: number | null;
  readonly headers: Record<string, string>;
}

/** One GET with a client certificate; status null when the connection was refused (no HTTP answer at all). */
async function get(port: number, cert: { chainPem: string; keyPem: string }, caPem: string): Promise<Answer> {
  const r = await tlsGet({ port, certPem: cert.chainPem, keyPem: cert.keyPem, caPem, path: '/x' }).catch(() => ({ answer: '' }));
  const m = /^HTTP\/1\.1 (\d{3})/.exec(r.answer);
  if (!m) return { status: null, headers: {} };
  // The body may arrive chunked: the JSON object is what lies between the first "{" and the last "}".
  const body = r.answer.slice(r.answer.indexOf('{'), r.answer.lastIndexOf('}') + 1);
  const json = body ? (JSON.parse(body) as { headers: Record<string, string> }) : { headers: {} };
  return { status: Number(m[1]), headers: json.headers };
}

const edgeGet = (port: number, cert: { chainPem: string; keyPem: string }) => get(port, cert, web.bundlePem());

async function metric(admin: number, direction: string, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tessera_tls_handshakes_total{') && l.includes(`direction="${direction}"`) && l.includes('result="failure"') && l.includes(`reason="${reason}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  mesh = await TestCa.create({ trustDomain: TD });
  partner = await TestCa.create({ trustDomain: PARTNER_TD, rootName: 'CN=Partner CA, O=Partner' });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  app = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers }));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(join(dir, 'partner-ca.pem'), partner.bundlePem());
  const server = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.example.test'] });
  await writeFile(join(dir, 'edge-server.pem'), server.chainPem);
  await writeFile(join(dir, 'edge-server.key'), server.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  // The edge lets the mesh workload A and the partner's own "ok" client in; the sidecar lets any mesh workload in.
  await writeFile(join(dir, 'policies', 'all.yaml'), policy('edge-allow', EDGE, [MESH_A, PARTNER_OK]) + policy('api-allow-mesh', SIDECAR, [`spiffe://${TD}/**`]));

  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  const listener = (name: string, extra: string[]) => [
    `  - name: ${name}`,
    '    listen: 127.0.0.1:0',
    '    certFile: edge-server.pem',
    '    keyFile: edge-server.key',
    '    clientCa: partner-ca.pem',
    ...extra,
    `    routes: [{ pathPrefix: /, upstream: 127.0.0.1:${appPort}, unsafePlaintext: true }]`,
  ];
  await writeFile(
    join(dir, 'edge.yaml'),
    [
      'identity:',
      '  files: { certFile: edge/svid.pem, keyFile: edge/key.pem, bundleFile: edge/bundle.pem }',
      'edge:',
      ...listener('confined', [`    clientTrustDomain: ${PARTNER_TD}`, '    authorize: true']),
      ...listener('unconfined', ['    authorize: false']),
      'authorization: { policiesDir: policies }',
      'admin: { listen: 127.0.0.1:0 }',
      'telemetry: { accessLog: off }',
      '',
    ].join('\n'),
  );
  await writeSvidFiles(mesh, SIDECAR, join(dir, 'api'));
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\n  - { name: app12, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, tlsMinVersion: '1.2' }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  const [edge, api] = await Promise.all([startProxyProcess(join(dir, 'edge.yaml')), startProxyProcess(join(dir, 'api.yaml'))]);
  procs.push(edge!, api!);
  ports = { confined: edge!.ports.get('edge/confined')!, unconfined: edge!.ports.get('edge/unconfined')!, sidecar: api!.ports.get('inbound/app')!, sidecar12: api!.ports.get('inbound/app12')!, edgeAdmin: edge!.admin, sidecarAdmin: api!.admin };
}, 60_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  app?.close();
  await cleanup?.();
});

describe('edge: outside-client identities are confined to their CA', () => {
  test("a partner's own client is identified in the partner's trust domain (control)", async () => {
    const r = await edgeGet(ports.confined, await partner.mintSvid(PARTNER_OK));
    expect(r.status).toBe(200);
    expect(r.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${EDGE};Hash=[0-9a-f]{64};Subject="O=Tessera Test";URI=${PARTNER_OK}$`));
  });

  test('a partner certificate carrying a mesh SPIFFE ID is refused, never seen as the mesh workload', async () => {
    const before = await metric(ports.edgeAdmin, 'edge', 'wrong_trust_domain');
    const forged = await partner.mintSvid(MESH_A);
    expect((await edgeGet(ports.confined, forged)).status).toBeNull();
    // Without a configured client trust domain it is refused just the same.
    expect((await edgeGet(ports.unconfined, forged)).status).toBeNull();
    expect(await metric(ports.edgeAdmin, 'edge', 'wrong_trust_domain')).toBeGreaterThanOrEqual(before + 2);
  });

  test.each([`spiffe://other.example/x`, `spiffe://${PARTNER_TD}`])('a partner certificate asserting %s (outside its trust domain, or the bare trust domain) is refused', async (id) => {
    expect((await edgeGet(ports.confined, await partner.mintSvid(id))).status).toBeNull();
  });

  test("a resumed session (leaf only) still verifies after the edge's own SVID rotated (client verdicts reset)", async () => {
    const cert = await partner.mintSvid(PARTNER_OK);
    const opts = { port: ports.confined, certPem: cert.chainPem, keyPem: cert.keyPem, caPem: web.bundlePem(), path: '/x' };
    const first = await tlsGet(opts);
    expect(first.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(first.ticket).toBeDefined();
    // A new mesh SVID for the edge: a new identity generation, so every cached client verdict is dropped.
    const { serial } = await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
    await until('the edge serves its new SVID', async () => (await (await fetch(`http://127.0.0.1:${ports.edgeAdmin}/certs`)).text()).includes(serial), 15_000);
    const resumed = await tlsGet({ ...opts, session: first.ticket });
    expect(resumed.resumed).toBe(true);
    expect(resumed.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(resumed.answer).toContain(`URI=${PARTNER_OK}`);
  });

  test('with no clientTrustDomain an outside client gets no SPIFFE ID at all: known by subject and hash', async () => {
    const r = await edgeGet(ports.unconfined, await partner.mintSvid(PARTNER_OK));
    expect(r.status).toBe(200);
    expect(r.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${EDGE};Hash=[0-9a-f]{64};Subject="O=Tessera Test"$`));
  });
});

describe('edge: the same leaf rules as the sidecars', () => {
  const hostile: [string, MintOptions][] = [
    ['a CA:TRUE leaf', { broken: 'ca-leaf' as BrokenKind }],
    ['a leaf with keyCertSign', { broken: 'key-cert-sign' as BrokenKind }],
    ['a leaf with cRLSign', { broken: 'crl-sign' as BrokenKind }],
    ['two URI SANs', { uriSans: [PARTNER_OK, `${PARTNER_OK}-2`] }],
    ['a URI SAN smuggling ", URI:"', { uriSans: [`${PARTNER_OK}, URI:${MESH_A}`] }],
    ['a URI SAN smuggling ";URI="', { uriSans: [`${PARTNER_OK};URI=${MESH_A}`] }],
    ['a URI SAN smuggling a quote', { uriSans: [`${PARTNER_OK}"`] }],
    ['a second subjectAltName extension', { broken: 'duplicate-san' as BrokenKind }],
    ['an unknown critical extension', { broken: 'unknown-critical' as BrokenKind }],
  ];
  test.each(hostile)('%s is refused at the handshake on every edge listener', async (_name, opts) => {
    const cert = await partner.mintSvid(PARTNER_OK, opts);
    expect((await edgeGet(ports.confined, cert)).status).toBeNull();
    expect((await edgeGet(ports.unconfined, cert)).status).toBeNull();
  });

  test('a DNS SAN that smuggles XFCC separators cannot add an element to the XFCC the app receives', async () => {
    for (const dns of [`x.test;URI=${MESH_A}`, `x.test,By=${MESH_A}`, 'x.test";URI="spiffe://example.org/ns/default/sa/a']) {
      const r = await edgeGet(ports.unconfined, await partner.mintSvid(PARTNER_OK, { uriSans: [], dnsSans: [dns, 'ok.partner.example'] }));
      expect(r.status).toBe(200);
      const xfcc = r.headers['x-forwarded-client-cert']!;
      expect(xfcc).toMatch(new RegExp(`^By=${EDGE};Hash=[0-9a-f]{64};Subject="O=Tessera Test";DNS=ok.partner.example$`));
    }
  });

  test('a subject that smuggles quotes and separators stays inside one quoted Subject value', async () => {
    const r = await edgeGet(ports.unconfined, await partner.mintSvid(PARTNER_OK, { uriSans: [], subject: `CN=a\\";URI=${MESH_A}, O=P` }));
    expect(r.status).toBe(200);
    const xfcc = r.headers['x-forwarded-client-cert']!;
    const m = /^By=[^;]+;Hash=[0-9a-f]{64};Subject="((?:[^"\\]|\\.)*)"$/.exec(xfcc);
    expect(m, xfcc).not.toBeNull();
  });
});

describe('sidecar: peers RFC 5280 and the X509-SVID rules refuse', () => {
  const meshGet = (cert: { chainPem: string; keyPem: string }) => get(ports.sidecar, cert, mesh.bundlePem());

  test('a valid mesh SVID gets through (control)', async () => {
    expect((await meshGet(await mesh.mintSvid(MESH_A))).status).toBe(200);
  });

  test.each([
    ['an unknown critical extension', MESH_A, { broken: 'unknown-critical' as BrokenKind }],
    ['a second subjectAltName extension', MESH_A, { broken: 'duplicate-san' as BrokenKind }],
    ['the bare trust-domain ID', `spiffe://${TD}`, {}],
  ] as const)('a peer leaf with %s is refused and counted as bad_svid', async (_name, id, opts) => {
    const before = await metric(ports.sidecarAdmin, 'inbound', 'bad_svid');
    expect((await meshGet(await mesh.mintSvid(id, opts))).status).toBeNull();
    expect(await metric(ports.sidecarAdmin, 'inbound', 'bad_svid')).toBe(before + 1);
  });

  test('an unrelated extra certificate in the sent chain is dropped before the check, as on the control plane (docs/security.md); borrowed mesh certificates do not help a stranger', async () => {
    const stranger = await TestCa.create({ trustDomain: TD, rootName: 'CN=Stranger' });
    const other = await TestCa.create({ trustDomain: 'other.org' });
    const extras = [other.intermediate.cert, stranger.root.cert];
    // Node's chain reader links issuers only (sent-chain.ts: the reader that kept extras leaked them, audit 51b F1),
    // so extras never reach the verifier: the path the leaf builds is what is judged (RFC 8446 4.4.2 asks receivers to
    // tolerate extraneous certificates).
    const withExtras = await meshGet(await mesh.mintSvid(MESH_A, { extraChain: extras }));
    expect(withExtras.status).toBe(200);
    expect(withExtras.headers['x-forwarded-client-cert']).toMatch(new RegExp(`;URI=${MESH_A}$`));
    // The mesh's own root sent along (TLS stacks append it) is no extra: still accepted.
    const withRoot = await meshGet(await mesh.mintSvid(MESH_A, { extraChain: [mesh.root.cert] }));
    expect(withRoot.status).toBe(200);
    expect(withRoot.headers['x-forwarded-client-cert']).toMatch(new RegExp(`;URI=${MESH_A}$`));
    // A stranger's SVID cannot borrow the mesh's real intermediate and root by sending them along.
    const borrowed = await meshGet(await stranger.mintSvid(MESH_A, { extraChain: [mesh.intermediate.cert, mesh.root.cert] }));
    expect(borrowed.status).toBeNull();
    // And the real peer still verifies afterwards.
    expect((await meshGet(await mesh.mintSvid(MESH_A))).status).toBe(200);
  });
});

/**
 * A TLS 1.2 keep-alive connection: one GET answered, then the client renegotiates (same certificate) and asks again.
 * What each request got back ('' = nothing) and whether the renegotiation completed.
 */
function renegotiateThenGet(port: number, cert: { chainPem: string; keyPem: string }, caPem: string): Promise<{ first: string; renegotiated: boolean; second: string }> {
  const req = 'GET /x HTTP/1.1\r\nhost: api\r\n\r\n';
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: cert.chainPem, key: cert.keyPem, ca: caPem, maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined });
    let answer = '';
    let first = '';
    let renegotiated = false;
    s.on('secureConnect', () => s.write(req));
    s.on('data', (d) => {
      answer += d;
      // The app answers with a JSON body, passed on as sent or chunked: whole at its closing brace or last chunk.
      if (first || !(answer.endsWith('}') || answer.endsWith('\r\n0\r\n\r\n'))) return;
      first = answer;
      answer = '';
      s.renegotiate({ rejectUnauthorized: false }, (err) => {
        renegotiated = !err;
        if (!err) s.write(req);
      });
    });
    const done = () => resolve({ first, renegotiated, second: answer });
    s.on('error', () => s.destroy());
    s.on('close', done);
    s.setTimeout(3_000, () => s.destroy());
  });
}

describe('TLS 1.2 renegotiation under an established connection', () => {
  test.each([
    ['the edge', 'edge', () => ({ port: ports.unconfined, admin: ports.edgeAdmin, svid: partner.mintSvid(PARTNER_OK), ca: web.bundlePem() })],
    ['a sidecar listener that allows TLS 1.2', 'inbound', () => ({ port: ports.sidecar12, admin: ports.sidecarAdmin, svid: mesh.mintSvid(MESH_A), ca: mesh.bundlePem() })],
  ] as const)('%s closes the connection: nothing is answered after the attempt, which is counted', async (_name, direction, target) => {
    const t = target();
    const before = await metric(t.admin, direction, 'protocol');
    const r = await renegotiateThenGet(t.port, await t.svid, t.ca);
    expect(r.first).toMatch(/^HTTP\/1\.1 200/);
    expect(r).toMatchObject({ renegotiated: false, second: '' });
    await until('the refused renegotiation counted', async () => (await metric(t.admin, direction, 'protocol')) === before + 1);
  });
});
