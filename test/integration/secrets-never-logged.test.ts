// Key material and tokens never appear in any output: a control plane and two proxies run at debug log level
// with access logs on, attest with join tokens, serve traffic, refuse a reused token and a bad certificate,
// and rotate; then every byte they wrote (stdout, stderr, the audit log, access logs, /config, /certs) is searched
// for the join tokens and for the proxies' private keys (fetched from the Workload API, in PEM, base64 and hex).
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type RunningControlPlane, TD, startControlPlaneProcess } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { REPO_ROOT, makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
const proxies: ProxyProcess[] = [];
const tokens: string[] = [];

async function fetchKeyDer(socket: string): Promise<Buffer> {
  const def = protoLoader.loadSync(join(REPO_ROOT, 'proto/spiffe/workload/workload.proto'), { keepCase: true, defaults: true });
  const Wl = (grpc.loadPackageDefinition(def) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  const client = new Wl(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { FetchX509SVID: (r: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ svids: { x509_svid_key: Buffer }[] }> };
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  const key = await new Promise<Buffer>((resolve, reject) => {
    const s = client.FetchX509SVID({}, md);
    s.on('data', (m) => {
      resolve(m.svids[0]!.x509_svid_key);
      s.cancel();
    });
    s.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
  client.close();
  return key;
}

async function proxyFor(name: string, id: string, body: string): Promise<ProxyProcess> {
  const p = await startAttestedProxy(cp, dir, name, id, body, `workloadApi: { socket: ${name}.sock }\ntelemetry: { accessLog: ${name}-access.log }\nlogLevel: debug\n`);
  tokens.push(p.token);
  proxies.push(p);
  return p;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const cfg = join(dir, 'cp.yaml');
  await mkdir(join(dir, 'policies'));
  await writeFile(cfg, [`trustDomain: ${TD}`, 'dataDir: ./data', 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', 'policies: { dir: ./policies }', 'logLevel: debug', 'svid: { ttl: 10s, backdate: 5s }', ''].join('\n'));
  await writeFile(join(dir, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
  cp = await startControlPlaneProcess(dir, cfg);
}, 60_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

test('no private key and no token in any log, audit record or admin answer', async () => {
  const api = await proxyFor('api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`);
  const web = await proxyFor('web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n`);
  const keys = [await fetchKeyDer(join(dir, 'api.sock')), await fetchKeyDer(join(dir, 'web.sock'))];
  // Traffic, a reused token (refused, audited), a token passed inline on the command line of svid fetch.
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, path: `/x?i=${i}`, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
  }
  const reuse = await tessera(['svid', 'fetch', '--control-plane', cp.grpc, '--bundle', join(cp.dataDir, 'bundle.pem'), '--join-token', tokens[0]!, '--out', join(dir, 'fetched')]);
  expect(reuse.code).toBe(1);
  // Wait for at least one renewal so rotation paths have logged too.
  const before = (await (await fetch(`http://127.0.0.1:${api.admin}/certs`)).json()) as { serial: string };
  await until('a renewal', async () => ((await (await fetch(`http://127.0.0.1:${api.admin}/certs`)).json()) as { serial: string }).serial !== before.serial, 15_000, 250);
  keys.push(await fetchKeyDer(join(dir, 'api.sock')));

  const admin: string[] = [];
  for (const p of proxies) for (const path of ['/config', '/certs', '/metrics']) admin.push(await (await fetch(`http://127.0.0.1:${p.admin}${path}`)).text());
  for (const p of proxies) await p.stop();
  await cp.stop();

  const files: string[] = [];
  for (const name of await readdir(dir)) if (name.endsWith('.log')) files.push(await readFile(join(dir, name), 'utf8'));
  for (const name of await readdir(cp.dataDir)) if (/audit|\.log$|\.jsonl$/.test(name)) files.push(await readFile(join(cp.dataDir, name), 'utf8'));
  const everything = [cp.stdout(), cp.stderr(), reuse.stdout, reuse.stderr, ...proxies.flatMap((p) => [p.stdout(), p.stderr()]), ...files, ...admin].join('\n');

  expect(everything.length).toBeGreaterThan(2_000); // the search covers real output
  expect(files.length).toBeGreaterThan(0);
  expect(everything).not.toMatch(/PRIVATE KEY/);
  for (const t of tokens) expect(everything).not.toContain(t);
  for (const k of keys) {
    expect(everything).not.toContain(k.toString('base64'));
    expect(everything).not.toContain(k.toString('base64').slice(40, 100)); // a fragment of a PEM line
    expect(everything).not.toContain(k.toString('hex').slice(20, 100));
  }
}, 90_000);
