// Hot reload with the file identity source: new SVID files (and a new trust bundle holding old + new CAs) are
// picked up while a keep-alive connection stays open and keeps working; fresh handshakes serve the new serial;
// a bad update is refused and the old identity keeps serving.
import { writeFile } from 'node:fs/promises';
import { type IncomingHttpHeaders, Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let caA: TestCa;
let caB: TestCa;
let app: ReturnType<typeof createServer>;
let apiProxy: ProxyProcess;
let webProxy: ProxyProcess;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(port: number): Promise<{ status: number; headers: IncomingHttpHeaders; socketId: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/x', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, socketId: (req.socket as unknown as { _id?: unknown })._id }));
    });
    req.on('socket', (s) => {
      (s as unknown as { _id?: unknown })._id ??= Math.random();
    });
    req.on('error', reject);
    req.end();
  });
}

async function certs(p: ProxyProcess): Promise<{ serial: string; servedSerial: string; generation: number; bundles: { fingerprints: string[] }[] }> {
  return (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as never;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  caA = await TestCa.create({ trustDomain: TD });
  caB = await TestCa.create({ trustDomain: TD, rootName: 'CN=Rotated Root, O=Tessera Test' });
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(caA, API, join(dir, 'api'));
  await writeSvidFiles(caA, WEB, join(dir, 'web'));
  await writeFile(join(dir, 'api.yaml'), `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
  apiProxy = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(join(dir, 'web.yaml'), `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${apiProxy.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`);
  webProxy = await startProxyProcess(join(dir, 'web.yaml'));
}, 60_000);

afterAll(async () => {
  agent.destroy();
  await webProxy?.stop();
  await apiProxy?.stop();
  app?.close();
  await cleanup?.();
});

test('a new SVID from the same CA is served to fresh handshakes while the open connection keeps working', async () => {
  const port = webProxy.ports.get('outbound/api')!;
  const first = await get(port);
  expect(first.status).toBe(200);
  const before = await certs(apiProxy);
  expect(before.servedSerial).toBe(before.serial);
  const next = await writeSvidFiles(caA, API, join(dir, 'api'));
  await until('the new SVID served', async () => (await certs(apiProxy)).servedSerial === next.serial);
  const again = await get(port);
  expect(again.status).toBe(200);
  expect(again.socketId).toBe(first.socketId); // the same client connection, never dropped
});

test('CA rotation: bundles with old + new authorities, then SVIDs from the new CA, no restart, no failed request', async () => {
  const port = webProxy.ports.get('outbound/api')!;
  const both = caA.bundlePem() + caB.bundlePem();
  // Step 1: both sides trust both CAs (SVIDs unchanged).
  for (const w of ['api', 'web']) {
    const s = await writeSvidFiles(caA, w === 'api' ? API : WEB, join(dir, w));
    await writeFile(join(dir, w, 'bundle.pem'), both);
    expect(s.serial).toBeTruthy();
  }
  await until('both proxies trust both roots', async () => (await certs(apiProxy)).bundles[0]!.fingerprints.length >= 2 && (await certs(webProxy)).bundles[0]!.fingerprints.length >= 2);
  expect((await get(port)).status).toBe(200);
  // Step 2: SVIDs from the new CA; the bundle still holds both.
  const apiNew = await writeSvidFiles(caB, API, join(dir, 'api'));
  await writeFile(join(dir, 'api', 'bundle.pem'), both);
  const webNew = await writeSvidFiles(caB, WEB, join(dir, 'web'));
  await writeFile(join(dir, 'web', 'bundle.pem'), both);
  await until('SVIDs from the new CA served', async () => (await certs(apiProxy)).servedSerial === apiNew.serial && (await certs(webProxy)).serial === webNew.serial);
  for (let i = 0; i < 5; i++) expect((await get(port)).status).toBe(200);
  // A fresh mTLS handshake with a new-CA client SVID is accepted and served the new-CA server SVID.
  const client = await caB.mintSvid(WEB);
  const fresh = await new Promise<{ serial: string; answer: string }>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: apiProxy.ports.get('inbound/app')!, cert: client.chainPem, key: client.keyPem, ca: both, checkServerIdentity: () => undefined }, () => {
      s.write('GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n');
    });
    let answer = '';
    s.on('data', (d) => {
      answer += d;
    });
    s.on('end', () => resolve({ serial: s.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '', answer }));
    s.on('error', reject);
  });
  expect(fresh.serial).toBe(apiNew.serial);
  expect(fresh.answer).toMatch(/^HTTP\/1\.1 200 /);
});

test('a bad update (key of another certificate) is refused and counted; the old identity keeps serving', async () => {
  const before = await certs(apiProxy);
  const other = await caB.mintSvid(API);
  await writeFile(join(dir, 'api', 'key.pem'), other.keyPem, { mode: 0o600 });
  await until('the refusal counted', async () => {
    const m = await (await fetch(`http://127.0.0.1:${apiProxy.admin}/metrics`)).text();
    return /tessera_svid_rotations_total\{result="refused"\} [1-9]/.test(m);
  });
  const after = await certs(apiProxy);
  expect(after.serial).toBe(before.serial);
  expect(after.servedSerial).toBe(before.serial);
  expect((await get(webProxy.ports.get('outbound/api')!)).status).toBe(200);
});

test('a new trust bundle alone counts as a trust-bundle update, not an SVID rotation (audit 34c F3)', async () => {
  const metric = async (name: string) => Number((await (await fetch(`http://127.0.0.1:${apiProxy.admin}/metrics`)).text()).match(new RegExp(`^${name}\\{result="success"\\} (\\d+)`, 'm'))?.[1] ?? 0);
  // Valid files again after the bad update above (an SVID rotation), then the bundle alone changes.
  const fixed = await writeSvidFiles(caB, API, join(dir, 'api'));
  await writeFile(join(dir, 'api', 'bundle.pem'), caA.bundlePem() + caB.bundlePem());
  await until('valid files served again', async () => (await certs(apiProxy)).servedSerial === fixed.serial);
  const rotations = await metric('tessera_svid_rotations_total');
  const bundles = await metric('tessera_trust_bundle_updates_total');
  const caC = await TestCa.create({ trustDomain: TD, rootName: 'CN=Third Root, O=Tessera Test' });
  const before = (await certs(apiProxy)).bundles[0]!.fingerprints.length;
  await writeFile(join(dir, 'api', 'bundle.pem'), caA.bundlePem() + caB.bundlePem() + caC.bundlePem());
  await until('the third root trusted', async () => (await certs(apiProxy)).bundles[0]!.fingerprints.length === before + 1);
  // Before 2026-12-06 this was counted as an SVID rotation and the bundle counter never moved for file identities.
  expect(await metric('tessera_trust_bundle_updates_total')).toBe(bundles + 1);
  expect(await metric('tessera_svid_rotations_total')).toBe(rotations);
  expect((await get(webProxy.ports.get('outbound/api')!)).status).toBe(200);
});
