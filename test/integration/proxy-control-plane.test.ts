// The proxy's control-plane identity source with real processes: attest with a join token, serve mTLS with the
// issued SVID, receive policies from Config/Watch (a new policy applies to the next request), renew before
// expiry with a short TTL without dropping the open connection, and survive a control-plane restart.
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo, } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let app: ReturnType<typeof createServer>;
let api: ProxyProcess;
let web: ProxyProcess;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

const allow = (name: string, methods: string[]) =>
  `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name} }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { methods: [${methods.join(', ')}] }\n`;

function call(method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get('outbound/api')!, method, path: '/x', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

async function certs(p: ProxyProcess): Promise<{ serial: string; servedSerial: string | null; source: string; notAfter: string }> {
  return (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as never;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const cpDir = join(dir, 'cp');
  await mkdir(cpDir, { recursive: true });
  await writeControlPlaneConfig(cpDir);
  // A fixed port, so the control plane comes back where the proxies look for it after a restart.
  const port = await freePort();
  const cfg = join(cpDir, 'cp-fixed.yaml');
  await writeFile(cfg, [`trustDomain: ${TD}`, 'dataDir: ./data', `listen: 127.0.0.1:${port}`, 'adminListen: 127.0.0.1:0', 'policies: { dir: ./policies }', 'logLevel: warn', 'svid: { ttl: 12s, backdate: 5s }', ''].join('\n'));
  await writeFile(join(cpDir, 'policies', 'api.yaml'), allow('api-allow-web', ['GET']));
  cp = await startControlPlaneProcess(cpDir, cfg);
  api = await startAttestedProxy(cp, dir, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port}, service: api }\n`);
  web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n  - { name: svc, listen: 127.0.0.1:0, service: api }\nlimits: { upstreamIdleTimeout: 1s }\n`);
}, 90_000);

afterAll(async () => {
  agent.destroy();
  await web?.stop();
  await api?.stop();
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

describe('proxy with a control-plane identity', () => {
  test('attested SVIDs carry the token-bound IDs; traffic flows; policy from the control plane is enforced', async () => {
    const c = await certs(api);
    expect(c.source).toBe('control-plane');
    expect(c.servedSerial).toBe(c.serial);
    expect(await call('GET')).toBe(200);
    expect(await call('POST')).toBe(403);
  });

  test('a policy change on the control plane applies to the next request on the same connection', async () => {
    await writeFile(join(cp.policiesDir, 'api.yaml'), allow('api-allow-web', ['GET', 'POST']));
    await until('POST allowed by the new policy', async () => (await call('POST')) === 200, 15_000);
  });

  test('the SVID renews before expiry (TTL 12 s) over mTLS; the open connection keeps working', async () => {
    const before = await certs(api);
    await until('api renewed its SVID', async () => (await certs(api)).serial !== before.serial, 20_000);
    const after = await certs(api);
    expect(after.servedSerial).toBe(after.serial);
    expect(Date.parse(after.notAfter)).toBeGreaterThan(Date.parse(before.notAfter));
    expect(await call('GET')).toBe(200);
    const m = await (await fetch(`http://127.0.0.1:${api.admin}/metrics`)).text();
    expect(m).toMatch(/tessera_svid_rotations_total\{result="success"\} [2-9]/);
  }, 30_000);

  test("after the caller's own SVID rotated and its old one expired, new upstream connections do not resume old sessions", async () => {
    const before = await certs(web);
    // Renewal (TTL 12 s), then the old SVID's expiry; meanwhile the idle pooled connection is closed (1 s).
    await until('web renewed and its old SVID expired', async () => (await certs(web)).serial !== before.serial && Date.now() > Date.parse(before.notAfter) + 1_500, 30_000);
    agent.destroy();
    expect(await call('GET')).toBe(200);
    const m = await (await fetch(`http://127.0.0.1:${api.admin}/metrics`)).text();
    expect(m).not.toMatch(/tessera_tls_handshakes_total\{direction="inbound",result="failure",reason="expired"/);
  }, 40_000);

  test('the config, registration and discovery streams follow the SVID: reopened with each new one, none cut', async () => {
    // By now both proxies renewed at least twice and their first SVIDs expired (the tests above). The control plane
    // ends a stream when the SVID it was opened with expires; streams reopened with the new SVID at each rotation
    // never meet that end, nor the close of the old SVID's gRPC channel (api registers a service, web watches it).
    const before = await certs(web);
    await until('web renewed and its previous SVID expired', async () => (await certs(web)).serial !== before.serial && Date.now() > Date.parse(before.notAfter) + 1_500, 30_000);
    for (const p of [api, web]) expect(p.stderr().split('\n').filter((l) => l.includes('stream disconnected'))).toEqual([]);
    // The streams are there: api's endpoint registered, web's discovery watching it. Polled: a rotation may fall
    // right here (renewals every ~6 s), and for a moment the reopened stream and the one it replaces both count.
    let cpm = '';
    const streamsThere = async () => {
      cpm = await (await fetch(`http://${cp.admin}/metrics`)).text();
      return /tessera_cp_discovery_watchers 1\b/.test(cpm) && /tessera_cp_registry_endpoints\{[^}]*service="api"[^}]*\} 1\b/.test(cpm);
    };
    await until('one discovery watcher and api\'s one endpoint at the control plane', streamsThere, 10_000).catch(() => undefined);
    expect(cpm).toMatch(/tessera_cp_discovery_watchers 1\b/);
    expect(cpm).toMatch(/tessera_cp_registry_endpoints\{[^}]*service="api"[^}]*\} 1\b/);
    // And the reopened stream carries updates: a policy change still applies.
    expect(await call('PUT')).toBe(403);
    await writeFile(join(cp.policiesDir, 'api.yaml'), allow('api-allow-web', ['GET', 'POST', 'PUT']));
    await until('PUT allowed by the new policy', async () => (await call('PUT')) === 200, 15_000);
  }, 40_000);

  test('the control plane restarts: proxies keep serving, then reconnect the watch and renew again', async () => {
    expect(await cp.stop()).toBe(0);
    expect(await call('GET')).toBe(200);
    expect((await fetch(`http://127.0.0.1:${api.admin}/ready`)).status).toBe(200);
    await writeFile(join(cp.policiesDir, 'api.yaml'), allow('api-allow-web', ['GET']));
    cp = await startControlPlaneProcess(cp.dir, cp.configFile);
    const before = await certs(api);
    await until('the watch delivered the restored policy', async () => (await call('POST')) === 403, 20_000); // the watch reconnected and delivered the new policy
    await until('renewal after the restart', async () => (await certs(api)).serial !== before.serial, 20_000); // renewal works again
    expect(await call('GET')).toBe(200);
  }, 60_000);
});
