// SPIFFE federation with real processes: two control planes of two trust domains (a.test, b.test) on loopback,
// each serving its bundle at an https_spiffe bundle endpoint and fetching the other's; a proxy of a.test calls a
// proxy of b.test with mutual verification across the domains and a policy in b.test naming the a.test caller.
// Then b.test's CA rotates (`tessera ca prepare/activate`) and a.test's proxy takes up the new bundle without a
// restart, so calls keep working against b's new SVIDs. An https_web endpoint (test CA) for a third domain that
// starts serving another domain's bundle is refused by code, counted, and its last good bundle is kept. A JWT-SVID
// minted in one domain validates through the other domain's Workload API; forgeries with b's kid, an unknown kid,
// or a's own real key for a b.test subject are refused by code and counted.

import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeCertificates } from '../../common/pki/pem.js';
import { signJwtSvid } from '../../common/spiffe/jwt-svid.js';
import { spiffeBundleDocument } from '../../common/spiffe/spiffe-bundle.js';
import { fingerprintOf } from '../../common/spiffe/trust-bundle.js';
import { type RunningControlPlane, startControlPlaneProcess } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';
import { connectWorkloadApi, type WorkloadApi, workloadMetadata } from '../helpers/workload-api-client.js';

const WEB = 'spiffe://a.test/ns/default/sa/web';
const API = 'spiffe://b.test/ns/default/sa/api';

let dir: string;
let cleanup: () => Promise<void>;
let cpA: RunningControlPlane;
let cpB: RunningControlPlane;
let web: ProxyProcess;
let api: ProxyProcess;
let app: Server;
let cWeb: ReturnType<typeof createHttpsServer>;
let cServes = '';
let cCa: TestCa;
let wlWeb: WorkloadApi;
let wlApi: WorkloadApi;

interface Certs {
  serial: string;
  servedSerial: string | null;
  bundles: { trustDomain: string; fingerprints: string[] }[];
}
const certs = async (p: ProxyProcess): Promise<Certs> => (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as never;
const bundleOf = async (p: ProxyProcess, td: string) => (await certs(p)).bundles.find((b) => b.trustDomain === td)?.fingerprints ?? [];
const metrics = async (cp: RunningControlPlane) => (await fetch(`http://${cp.admin}/metrics`)).text();

/** A request from a.test's app through web's outbound (mTLS to b.test's api inbound); a fresh connection each time. */
async function call(method = 'GET'): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${web.ports.get('outbound/api')}/x`, { method, headers: { connection: 'close' } });
  await res.arrayBuffer();
  return res.status;
}

async function controlPlaneConfig(name: 'a' | 'b', peer: 'a' | 'b', ports: Record<'a' | 'b', number>, extra = ''): Promise<string> {
  const d = join(dir, name);
  await mkdir(join(d, 'policies'), { recursive: true });
  const file = join(d, 'cp.yaml');
  await writeFile(
    file,
    [
      `trustDomain: ${name}.test`,
      'dataDir: ./data',
      'listen: 127.0.0.1:0',
      'adminListen: 127.0.0.1:0',
      'policies: { dir: ./policies }',
      'logLevel: warn',
      'svid: { ttl: 12s, backdate: 5s }',
      'federation:',
      `  bundleEndpoint: { listen: 127.0.0.1:${ports[name]} }`,
      '  refreshMin: 1s',
      '  refreshMax: 2s',
      '  trustDomains:',
      `    - trustDomain: ${peer}.test`,
      `      bundleEndpointUrl: https://127.0.0.1:${ports[peer]}/`,
      '      profile: https_spiffe',
      `      endpointSpiffeId: spiffe://${peer}.test/tessera/control-plane`,
      `      bundleFile: ../${peer}/data/bundle.spiffe.json`,
      extra,
      '',
    ].join('\n'),
  );
  return file;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // A third domain's https_web endpoint (test CA, host name localhost), first serving a good c.test bundle.
  cCa = await TestCa.create({ trustDomain: 'c.test' });
  const cServer = await cCa.mintSvid('spiffe://c.test/bundle-endpoint', { dnsSans: ['localhost'] });
  cServes = JSON.stringify(spiffeBundleDocument({ x509Authorities: [cCa.root.cert], jwtAuthorities: [], sequence: 1, refreshHintSeconds: 1 }));
  cWeb = createHttpsServer({ cert: cServer.chainPem, key: cServer.keyPem }, (_req, res) => res.end(cServes));
  await new Promise<void>((r) => cWeb.listen(0, '127.0.0.1', r));
  await mkdir(join(dir, 'a'), { recursive: true });
  await writeFile(join(dir, 'a', 'c-ca.pem'), cCa.bundlePem());

  const ports = { a: await freePort(), b: await freePort() };
  // The out-of-band exchange of bootstrap bundles: a.test's CA is created first (a bare start), b.test starts with
  // a's bundle file, then a.test starts federated with b's.
  await mkdir(join(dir, 'a', 'policies'), { recursive: true });
  await writeFile(join(dir, 'a', 'bare.yaml'), 'trustDomain: a.test\ndataDir: ./data\nlisten: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nlogLevel: warn\n');
  const bare = await startControlPlaneProcess(join(dir, 'a'), join(dir, 'a', 'bare.yaml'));
  expect(await bare.stop()).toBe(0);
  cpB = await startControlPlaneProcess(join(dir, 'b'), await controlPlaneConfig('b', 'a', ports));
  const cDomain = [
    '    - trustDomain: c.test',
    `      bundleEndpointUrl: https://localhost:${(cWeb.address() as AddressInfo).port}/`,
    '      profile: https_web',
    '      caFile: c-ca.pem',
  ].join('\n');
  cpA = await startControlPlaneProcess(join(dir, 'a'), await controlPlaneConfig('a', 'b', ports, cDomain));

  await writeFile(
    join(cpB.policiesDir, 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-a-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { methods: [GET] }\n`,
  );
  api = await startAttestedProxy(cpB, dir, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nworkloadApi: { socket: api.sock }\n`);
  web = await startAttestedProxy(cpA, dir, 'web', WEB, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nlimits: { upstreamIdleTimeout: 1s }\nworkloadApi: { socket: web.sock }\n`);
  wlWeb = connectWorkloadApi(join(dir, 'web.sock'));
  wlApi = connectWorkloadApi(join(dir, 'api.sock'));
}, 120_000);

afterAll(async () => {
  wlWeb?.client.close();
  wlApi?.client.close();
  await web?.stop();
  await api?.stop();
  await cpA?.stop();
  await cpB?.stop();
  app?.close();
  cWeb?.close();
  await cleanup?.();
});

/** A GET to web's inbound with a client SVID minted by `ca`: the HTTP status, or the error of a refused handshake. */
async function callWebInbound(ca: TestCa, id: string): Promise<number | Error> {
  const svid = await ca.mintSvid(id);
  const caPem = await readFile(join(cpA.dataDir, 'bundle.pem'), 'utf8');
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: web.ports.get('inbound/app'), path: '/', cert: svid.chainPem, key: svid.keyPem, ca: caPem, checkServerIdentity: () => undefined, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', (e) => resolve(e));
    req.end();
  });
}

describe('federation of two trust domains', () => {
  test("each proxy holds the other domain's bundle under that domain only; a call crosses the domains; b's policy names a's caller", async () => {
    const aRoots = (await readFile(join(cpA.dataDir, 'bundle.pem'), 'utf8')).length;
    expect(aRoots).toBeGreaterThan(0);
    await until('web holds the b.test bundle', async () => (await bundleOf(web, 'b.test')).length > 0, 20_000);
    await until('api holds the a.test bundle', async () => (await bundleOf(api, 'a.test')).length > 0, 20_000);
    const bRoots = decodeCertificates(await readFile(join(cpB.dataDir, 'bundle.pem'))).map((d) => fingerprintOf(new X509Certificate(d)));
    expect((await bundleOf(web, 'b.test')).sort()).toEqual(bRoots.sort());
    // b's roots are under b.test only; a's own bundle holds none of them.
    expect((await bundleOf(web, 'a.test')).some((f) => bRoots.includes(f))).toBe(false);
    expect(await call('GET')).toBe(200);
    expect(await call('POST')).toBe(403); // the policy in b.test names a's caller for GET only
    const m = await (await fetch(`http://127.0.0.1:${api.admin}/metrics`)).text();
    expect(m).toMatch(/tessera_authz_decisions_total\{decision="allow",mode="enforce",policy="api-allow-a-web"\} [1-9]/);
  }, 60_000);

  test("b.test's CA rotates: a.test's proxy takes up the new bundle without a restart and calls keep working", async () => {
    const webPid = web.child.pid;
    const prepared = await tessera(['ca', 'prepare', '--data-dir', cpB.dataDir, '--json']);
    expect(prepared.code, prepared.stderr).toBe(0);
    const newId = (JSON.parse(prepared.stdout) as { prepared: string }).prepared;
    const newRootDer = decodeCertificates(await readFile(join(cpB.dataDir, 'ca', `${newId}-root.crt`)))[0]!;
    const newRoot = fingerprintOf(new X509Certificate(newRootDer));
    await until("web holds b's new root", async () => (await bundleOf(web, 'b.test')).includes(newRoot), 20_000);
    // a keeps the last good document for its next start.
    expect(await readFile(join(cpA.dataDir, 'federation', 'b.test.json'), 'utf8')).toContain(Buffer.from(newRootDer).toString('base64'));
    const activated = await tessera(['ca', 'activate', '--data-dir', cpB.dataDir]);
    expect(activated.code, activated.stderr).toBe(0);
    const fetched = async () => Number(/tessera_federation_bundle_fetches_total\{trust_domain="b\.test"\} ([0-9]+)/.exec(await metrics(cpA))?.[1] ?? 0);
    const fetchFailures = async () => Number(/tessera_federation_bundle_refusals_total\{trust_domain="b\.test",code="TESSERA_ERR_FEDERATION_FETCH_FAILED"\} ([0-9]+)/.exec(await metrics(cpA))?.[1] ?? 0);
    const [fetchedAtActivation, failedAtActivation] = [await fetched(), await fetchFailures()];
    const before = await certs(api);
    // api renews (TTL 12 s) from the new authority; its old connections idle out (1 s) before the next call.
    await until('api serves an SVID of the new authority', async () => {
      const c = await certs(api);
      return c.serial !== before.serial && c.servedSerial === c.serial;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await call('GET')).toBe(200);
    expect(web.child.pid).toBe(webPid);
    expect(web.child.exitCode).toBeNull();
    // b's endpoint presents an SVID of the retired authority until that is removed: a keeps fetching (https_spiffe,
    // checked by the held bundle).
    await until('a fetched b after the activation', async () => (await fetched()) >= fetchedAtActivation + 2, 20_000);
    expect(await fetchFailures()).toBe(failedAtActivation);
  }, 90_000);

  test("an endpoint that serves another domain's bundle is refused, counted, and the last good bundle stays", async () => {
    const cRoot = fingerprintOf(cCa.root.cert);
    await until('web holds the c.test bundle fetched over https_web', async () => (await bundleOf(web, 'c.test')).includes(cRoot), 20_000);
    // Now the c.test endpoint serves b.test's bundle document.
    cServes = await readFile(join(cpB.dataDir, 'bundle.spiffe.json'), 'utf8');
    const refused = /tessera_federation_bundle_refusals_total\{trust_domain="c\.test",code="TESSERA_ERR_FEDERATION_WRONG_TRUST_DOMAIN"\} ([0-9]+)/;
    await until('the refusal is counted', async () => Number(refused.exec(await metrics(cpA))?.[1] ?? 0) >= 2, 20_000);
    expect(await bundleOf(web, 'c.test')).toEqual([cRoot]);
    const bRoots = await bundleOf(web, 'b.test');
    expect((await bundleOf(web, 'c.test')).some((f) => bRoots.includes(f))).toBe(false);
    expect(await call('GET')).toBe(200);
  }, 60_000);

  test("a federated domain's CA is trusted for that domain only: it cannot mint IDs of ours or of another federated domain", async () => {
    await until('web holds the c.test bundle', async () => (await bundleOf(web, 'c.test')).length > 0, 20_000);
    // Control: c's CA is accepted for a c.test ID (the handshake completes; authorization then decides).
    expect(typeof (await callWebInbound(cCa, 'spiffe://c.test/ns/default/sa/client'))).toBe('number');
    for (const forged of [WEB, API]) expect(await callWebInbound(cCa, forged), forged).toBeInstanceOf(Error);
    const m = await (await fetch(`http://127.0.0.1:${web.admin}/metrics`)).text();
    expect(m).toMatch(/tessera_tls_handshakes_total\{direction="inbound",result="failure",reason="wrong_trust_domain"[^}]*\} [2-9]/);
  }, 60_000);
});

/** The kids of a domain's JWT bundle as one proxy's Workload API streams it (FetchJWTBundles, first message). */
async function jwtKidsAt(wl: WorkloadApi, td: string): Promise<string[]> {
  const stream = wl.client.FetchJWTBundles({}, workloadMetadata());
  try {
    const first = await new Promise<{ bundles: Record<string, Buffer> }>((ok, fail) => {
      stream.once('data', ok);
      stream.once('error', fail);
    });
    const jwks = first.bundles[`spiffe://${td}`];
    return jwks ? (JSON.parse(jwks.toString()) as { keys: { kid: string }[] }).keys.map((k) => k.kid) : [];
  } finally {
    stream.cancel();
  }
}

/** The jwt-svid kids a control plane publishes in its bundle.spiffe.json. */
async function publishedKids(cp: RunningControlPlane): Promise<string[]> {
  const doc = JSON.parse(await readFile(join(cp.dataDir, 'bundle.spiffe.json'), 'utf8')) as { keys: { use: string; kid: string }[] };
  return doc.keys.filter((k) => k.use === 'jwt-svid').map((k) => k.kid);
}

/** An ES256 JWT-SVID signed by `key` under `kid` for `sub`, valid for five minutes. */
const forge = (key: KeyObject, kid: string, sub: string, audience: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).setSubject(sub).setAudience(audience).setIssuedAt().setExpirationTime('5m').sign(key);

describe('JWT-SVIDs across the federation', () => {
  test("a.test's Workload API validates a JWT-SVID minted in b.test (and b's one minted in a.test); another audience is refused", async () => {
    const [aKids, bKids] = [await publishedKids(cpA), await publishedKids(cpB)];
    expect(aKids).toHaveLength(1);
    expect(bKids).toHaveLength(1);
    await until("web's JWT bundles hold b's key under b.test", async () => (await jwtKidsAt(wlWeb, 'b.test')).includes(bKids[0]!), 20_000);
    await until("api's JWT bundles hold a's key under a.test", async () => (await jwtKidsAt(wlApi, 'a.test')).includes(aKids[0]!), 20_000);
    // Each domain's key under its own domain only.
    expect(await jwtKidsAt(wlWeb, 'a.test')).not.toContain(bKids[0]);

    const fromB = await wlApi.fetchJwt({ audience: ['orders'] });
    expect(fromB.err).toBeNull();
    expect(fromB.res.svids[0]!.spiffe_id).toBe(API);
    const token = fromB.res.svids[0]!.svid;
    const v = await wlWeb.validate('orders', token);
    expect(v.err).toBeNull();
    expect(v.res.spiffe_id).toBe(API);
    expect(v.res.claims.fields['sub']!.stringValue).toBe(API);

    const fromA = (await wlWeb.fetchJwt({ audience: ['billing'] })).res.svids[0]!.svid;
    expect((await wlApi.validate('billing', fromA)).res?.spiffe_id).toBe(WEB);

    const other = await wlWeb.validate('elsewhere', token);
    expect(other.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(other.err?.details).toContain('TESSERA_ERR_JWT_SVID_WRONG_AUDIENCE');
  }, 60_000);

  test("forged b.test tokens are refused by a.test: b's kid with another key, an unknown kid, a's real key", async () => {
    const [aKid] = await publishedKids(cpA);
    const [bKid] = await publishedKids(cpB);
    await until("web's JWT bundles hold b's key", async () => (await jwtKidsAt(wlWeb, 'b.test')).includes(bKid!), 20_000);
    const aKey = createPrivateKey(await readFile(join(cpA.dataDir, 'jwt', `${aKid}.key.pem`), 'utf8'));
    const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const before = await metricsText(web.admin);
    const refused = (text: string, reason: string) => sumSeries(text, 'tessera_workload_api_jwt_calls_total', { call: 'validate', result: 'refused', reason });

    // Control: a's key file is a's real signing key, so a token of an a.test subject it signs is accepted — signed as
    // Tessera signs (a low S): a.test is web's own trust domain, whose high-S spellings are refused.
    const ownToken = signJwtSvid({ privateKey: aKey, keyId: aKid!, spiffeId: 'spiffe://a.test/ns/default/sa/forged', audience: ['orders'], issuedAtMs: Date.now(), expiresAtMs: Date.now() + 300_000 });
    const own = await wlWeb.validate('orders', ownToken);
    expect(own.err).toBeNull();
    expect(own.res.spiffe_id).toBe('spiffe://a.test/ns/default/sa/forged');

    const cases: [string, string][] = [
      ['BAD_SIGNATURE', await forge(fresh, bKid!, API, 'orders')], // b's kid, not b's key
      ['UNKNOWN_KEY', await forge(fresh, 'no-such-kid', API, 'orders')],
      ['UNKNOWN_KEY', await forge(aKey, aKid!, API, 'orders')], // a's real key is no authority for b.test
      ['NO_BUNDLE', await forge(aKey, aKid!, 'spiffe://d.test/ns/default/sa/api', 'orders')], // not federated at all
    ];
    for (const [code, svid] of cases) {
      const r = await wlWeb.validate('orders', svid);
      expect(r.err?.code, code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.err?.details, code).toContain(`TESSERA_ERR_JWT_SVID_${code}`);
    }
    const after = await metricsText(web.admin);
    expect(refused(after, 'bad_signature') - refused(before, 'bad_signature')).toBe(1);
    expect(refused(after, 'unknown_key') - refused(before, 'unknown_key')).toBe(2);
    expect(refused(after, 'no_bundle') - refused(before, 'no_bundle')).toBe(1);
  }, 60_000);

  // Audit 38c F4 and I1, for a federated issuer: b's real key vouches for b's workloads, never for a reserved ID of
  // b.test (its control plane's own, its bare trust-domain ID), and never for a token issued in the future.
  test("b's real key: a b.test workload validates in a.test; b's reserved IDs and an iat ahead are refused", async () => {
    const [bKid] = await publishedKids(cpB);
    await until("web's JWT bundles hold b's key", async () => (await jwtKidsAt(wlWeb, 'b.test')).includes(bKid!), 20_000);
    const bKey = createPrivateKey(await readFile(join(cpB.dataDir, 'jwt', `${bKid}.key.pem`), 'utf8'));
    const token = (sub: string, issuedAtMs = Date.now()) => signJwtSvid({ privateKey: bKey, keyId: bKid!, spiffeId: sub, audience: ['orders'], issuedAtMs, expiresAtMs: Date.now() + 300_000 });
    expect((await wlWeb.validate('orders', token(API))).err).toBeNull();
    const cases: [string, string][] = [
      ['BAD_SUBJECT', token('spiffe://b.test/tessera/control-plane')],
      ['BAD_SUBJECT', token('spiffe://b.test')],
      ['NOT_YET_VALID', token(API, Date.now() + 3_600_000)],
    ];
    for (const [code, svid] of cases) {
      const r = await wlWeb.validate('orders', svid);
      expect(r.err?.code, code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.err?.details, code).toContain(`TESSERA_ERR_JWT_SVID_${code}`);
    }
  }, 60_000);
});
