// Two control-plane replicas sharing one CA, as on Kubernetes (the CA directory mounted read-only from a Secret
// into each replica's data dir): both serve, both sign with the same authority, SVIDs from either verify under
// the same bundle, proxies attested by different replicas talk to each other, and no replica writes to the CA.
import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type RunningControlPlane, TD, joinTokenSvid, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, run } from '../helpers/run.js';
import { type SecretMount, canMount, mountSecret } from '../helpers/secret-mount.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
const cps: RunningControlPlane[] = [];
const proxies: ProxyProcess[] = [];
const mounts: SecretMount[] = [];
let app: ReturnType<typeof createServer>;

async function caDigest(caDir: string): Promise<string> {
  const h = createHash('sha256');
  // `..data` and the timestamped directory of a Secret mount are the kubelet's; the keys are read through them.
  for (const name of (await readdir(caDir)).sort()) if (!name.startsWith('..')) h.update(name).update(await readFile(join(caDir, name)));
  return h.digest('hex');
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // The CA is made once (as the install procedure does offline) …
  const seed = join(dir, 'seed');
  await mkdir(seed);
  const seedCp = await startControlPlaneProcess(seed, await writeControlPlaneConfig(seed));
  expect(await seedCp.stop()).toBe(0);
  // … then each replica gets it as a Secret volume: a read-only mount where the machine allows one (root may
  // chmod and write a directory it owns, so only a read-only MOUNT is what a cluster gives), else a 0500 copy.
  const files: Record<string, Buffer> = {};
  for (const f of await readdir(join(seed, 'data', 'ca'))) files[f] = await readFile(join(seed, 'data', 'ca', f));
  for (const name of ['a', 'b']) {
    const d = join(dir, name);
    await mkdir(join(d, 'data'), { recursive: true, mode: 0o700 });
    if (canMount()) mounts.push(await mountSecret(join(d, 'secret'), join(d, 'data', 'ca'), files, { mode: 0o400 }));
    else {
      await cp(join(seed, 'data', 'ca'), join(d, 'data', 'ca'), { recursive: true });
      for (const f of await readdir(join(d, 'data', 'ca'))) await chmod(join(d, 'data', 'ca', f), 0o400);
      await chmod(join(d, 'data', 'ca'), 0o500);
    }
    const cfg = await writeControlPlaneConfig(d);
    await writeFile(join(d, 'policies', 'api.yaml'), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`);
    cps.push(await startControlPlaneProcess(d, cfg));
  }
}, 90_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  for (const c of cps) await c.stop();
  for (const m of mounts) await m.unmount();
  app?.close();
  await cleanup?.();
});

test('both replicas publish the same bundle and sign with the same authority; the CA files are untouched', async () => {
  const [a, b] = cps as [RunningControlPlane, RunningControlPlane];
  const digestA = await caDigest(join(a.dataDir, 'ca'));
  expect(await readFile(join(a.dataDir, 'bundle.pem'), 'utf8')).toBe(await readFile(join(b.dataDir, 'bundle.pem'), 'utf8'));
  const bundleA = await readFile(join(a.dataDir, 'bundle.pem'), 'utf8');
  for (const cp of [a, b]) {
    // A join token and SignSvid, the requests `token create` and `svid fetch` make (those commands have tests of
    // their own), the server checked against replica a's bundle.
    const svid = await joinTokenSvid(cp, bundleA, `spiffe://${TD}/ns/default/sa/probe-${cps.indexOf(cp)}`);
    const chainFile = join(dir, `fetched-${cps.indexOf(cp)}.pem`);
    await writeFile(chainFile, svid.chainPem);
    // Verified against the OTHER replica's bundle: one trust domain, one CA.
    const verify = await run('openssl', ['verify', '-CAfile', join(b.dataDir, 'bundle.pem'), '-untrusted', chainFile, chainFile]);
    expect(verify.stdout).toContain('OK');
  }
  expect(await caDigest(join(a.dataDir, 'ca'))).toBe(digestA);
});

test('a proxy attested by replica a and one attested by replica b talk to each other', async () => {
  const [a, b] = cps as [RunningControlPlane, RunningControlPlane];
  const proxyFor = async (cp: RunningControlPlane, name: string, id: string, body: string) => {
    const p = await startAttestedProxy(cp, dir, name, id, body);
    proxies.push(p);
    return p;
  };

  const api = await proxyFor(a, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`);
  const web = await proxyFor(b, 'web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n`);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, path: '/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
  expect(status).toBe(200);
});
