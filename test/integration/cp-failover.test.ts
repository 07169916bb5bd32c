// Control-plane failover and failback of the proxy, with real processes (issue 20, DESIGN.md section 12): two
// control planes sharing one CA (its ca/ directory copied into both data dirs), proxies configured with
// `addresses: [cp1, cp2]` and attested by cp1. cp1 is killed with SIGKILL: the proxies keep serving mTLS traffic
// (no failed request), renew their SVIDs from cp2 (it is in cp2's inventory), their Config/Watch follows (a policy
// that only cp2 has applies, although cp2 numbers its snapshots below cp1's), and discovery registers and watches
// on cp2. cp1 comes back on its address: every proxy fails back to it (a policy only cp2 had goes, renewals are
// cp1's again). cp1 shut down in order (SIGTERM) sends them to cp2 again. The metrics tell which address is current
// and how often it changed. A second test: one SignSvid call goes through a refused port and a black hole to a live
// replica within its deadline.
import { X509Certificate } from 'node:crypto';
import { chmod, cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { TrustBundle, TrustBundleSet } from '../../common/spiffe/trust-bundle.js';
import { TrustDomain } from '../../common/spiffe/trust-domain.js';
import { ControlPlaneClient } from '../../proxy/src/identity/control-plane-client.js';
import { ControlPlaneEndpoints } from '../../proxy/src/identity/control-plane-endpoints.js';
import { systemClock } from '../../common/clock.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
/** Short SVIDs (renewal every ~6 s) so that renewals happen while cp1 is down and after it is back. */
const CP_EXTRA = 'svid: { ttl: 12s, backdate: 1s }';

let dir: string;
let cleanup: () => Promise<void>;
let cp1: RunningControlPlane;
let cp2: RunningControlPlane;
let cp1Address: string;
let cp2Address: string;
let api: ProxyProcess;
let web: ProxyProcess;
let app: ReturnType<typeof createServer>;
const agent = new Agent({ keepAlive: true, maxSockets: 2 });

const allowWeb = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`;
const denyBlocked = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-deny-blocked }\nspec:\n  selector: ${API}\n  action: DENY\n  rules:\n    - from: [${WEB}]\n      to: { paths: [/blocked] }\n`;
// Selects api (so api's snapshot content changes and cp1 pushes it at once: a policy selecting someone else would
// reach api only when its stream reconnects, i.e. after an SVID renewal) and allows a caller that never calls.
const noop = (n: number) => `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: noop-${n} }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [spiffe://${TD}/ns/nobody/sa/nobody-${n}]\n`;

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function serial(p: ProxyProcess): Promise<string> {
  return ((await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as { serial: string }).serial;
}

async function policiesVersion(p: ProxyProcess): Promise<number> {
  const v = ((await (await fetch(`http://127.0.0.1:${p.admin}/config`)).json()) as { policiesVersion: string }).policiesVersion;
  return Number(/(\d+)$/.exec(v)?.[1] ?? Number.NaN);
}

async function ready(p: ProxyProcess): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${p.admin}/ready`)).status === 200;
}

/**
 * The serials a control plane's own inventory holds (each replica keeps its own with the embedded store): the
 * request `tessera certs list --json` makes, without a node start per poll (that command has tests of its own).
 */
async function inventory(c: RunningControlPlane): Promise<string[]> {
  return (await adminRequest<{ serial: string }[]>(c.dataDir, 'GET', '/v1/certs', undefined, 10_000)).map((r) => r.serial.toLowerCase());
}

async function current(p: ProxyProcess): Promise<string | undefined> {
  const text = await metricsText(p.admin);
  const line = text.split('\n').find((l) => l.startsWith('tessera_control_plane_current{') && l.endsWith(' 1'));
  return line ? /address="([^"]+)"/.exec(line)?.[1] : undefined;
}

/** Requests through web → api (mTLS between the proxies) one after another until stopped; every outcome kept. */
function traffic(port: number) {
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const done = (async () => {
    // Bounded: at most 20 minutes' worth at one request per ~20 ms.
    for (let i = 0; running && i < 60_000; i++) {
      try {
        const status = await get(port, '/hello');
        if (status === 200) ok++;
        else failures.push(`status ${status}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    failures,
    get ok() {
      return ok;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // One CA, made by cp1 on its first start (no seed control plane to start and stop), copied into cp2's data dir;
  // both copies owner read-only, as a Secret would hold it (cp1 loads its copy so when it comes back after the kill).
  const readOnly = async (ca: string) => {
    for (const f of await readdir(ca)) await chmod(join(ca, f), 0o400);
    await chmod(ca, 0o500);
  };
  const started: RunningControlPlane[] = [];
  for (const name of ['cp1', 'cp2']) {
    const d = join(dir, name);
    await mkdir(join(d, 'data'), { recursive: true, mode: 0o700 });
    if (started[0]) {
      await cp(join(started[0].dataDir, 'ca'), join(d, 'data', 'ca'), { recursive: true });
      await readOnly(join(d, 'data', 'ca'));
    }
    // A fixed port: cp1 must come back where the proxies look for it.
    const cfg = await writeControlPlaneConfig(d, CP_EXTRA, `127.0.0.1:${await freePort()}`);
    await writeFile(join(d, 'policies', 'api.yaml'), allowWeb);
    started.push(await startControlPlaneProcess(d, cfg));
  }
  [cp1, cp2] = started as [RunningControlPlane, RunningControlPlane];
  await readOnly(join(cp1.dataDir, 'ca'));
  cp1Address = cp1.grpc;
  cp2Address = cp2.grpc;

  const proxyConfig = async (name: string, id: string, body: string) => {
    await writeFile(join(dir, `${name}.token`), await createJoinToken(cp1.dataDir, id, 600_000), { mode: 0o600 });
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      `identity:\n  controlPlane:\n    addresses: [${cp1Address}, ${cp2Address}]\n    failbackInterval: 1s\n    bundleFile: ${join(cp1.dataDir, 'bundle.pem')}\n    joinTokenFile: ${name}.token\n${body}admin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    return file;
  };
  api = await startProxyProcess(await proxyConfig('api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port}, service: api }\n`), 30_000);
  web = await startProxyProcess(
    await proxyConfig('web', WEB, `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\n  - { name: svc, listen: 127.0.0.1:0, service: api }\n`),
    30_000,
  );
}, 120_000);

afterAll(async () => {
  agent.destroy();
  for (const p of [web, api]) await p?.stop();
  for (const c of [cp1, cp2]) await c?.stop();
  app?.close();
  await cleanup?.();
});

describe('two control-plane replicas, proxies with addresses: [cp1, cp2]', () => {
  test('cp1 killed: no failed request; renewals from cp2; config and discovery follow to cp2. cp1 back: all fail back', async () => {
    const proxies = [api, web];
    for (const p of proxies) expect(await current(p)).toBe(cp1Address);
    // cp1 numbers its snapshots ahead of cp2 (4 changes more): after the failover the proxies must still take cp2's.
    for (let n = 1; n <= 4; n++) {
      const before = await policiesVersion(api);
      await writeFile(join(cp1.policiesDir, `noop-${n}.yaml`), noop(n));
      await until(`cp1 snapshot ${n} applied by api`, async () => (await policiesVersion(api)) > before, 15_000);
    }
    const cp1Version = await policiesVersion(api);
    await until('web routes to api through discovery', async () => (await get(web.ports.get('outbound/svc')!, '/via-discovery')) === 200, 20_000);
    const load = traffic(web.ports.get('outbound/api')!);
    await until('traffic flows', () => load.ok >= 10, 10_000);

    // ---- cp1 dies without a word.
    const cp1Before = await inventory(cp1);
    const killedAt = Date.now();
    cp1.proc.kill('SIGKILL');
    for (const p of proxies) await until(`${p === api ? 'api' : 'web'} fails over to cp2`, async () => (await current(p)) === cp2Address, 15_000, 20);
    const failoverMs = Date.now() - killedAt;
    for (const p of proxies) {
      const m = await metricsText(p.admin);
      expect(sumSeries(m, 'tessera_control_plane_failovers_total')).toBeGreaterThanOrEqual(1);
      expect(sumSeries(m, 'tessera_control_plane_current', { address: cp1Address, preferred: 'true' })).toBe(0);
      expect(sumSeries(m, 'tessera_control_plane_current', { address: cp2Address, preferred: 'false' })).toBe(1);
    }
    // Renewal: each proxy soon serves an SVID that cp2 issued (cp2's inventory has it; cp1 had never issued it).
    const servesFrom = async (p: ProxyProcess, c: RunningControlPlane) => (await inventory(c)).includes(await serial(p));
    for (const p of proxies) await until('renewed by cp2 while cp1 is down', () => servesFrom(p, cp2), 20_000, 500);
    for (const p of proxies) expect(cp1Before).not.toContain(await serial(p));
    // Config/Watch on cp2: a policy only cp2 has applies, though cp2's snapshot numbers are below cp1's.
    expect(await get(web.ports.get('outbound/api')!, '/blocked')).toBe(200);
    await writeFile(join(cp2.policiesDir, 'deny-blocked.yaml'), denyBlocked);
    await until('cp2 policy applied by api', async () => (await get(web.ports.get('outbound/api')!, '/blocked')) === 403, 15_000);
    expect(await policiesVersion(api)).toBeLessThan(cp1Version);
    // Discovery on cp2: api registered there, web watches there and still routes by service.
    const cp2Metrics = async () => (await fetch(`http://${cp2.admin}/metrics`)).text();
    await until('api registered on cp2 and web watching it', async () => {
      const m = await cp2Metrics();
      return sumSeries(m, 'tessera_cp_registry_endpoints', { service: 'api', source: 'self' }) === 1 && sumSeries(m, 'tessera_cp_discovery_watchers') === 1;
    }, 15_000);
    expect(sumSeries(await metricsText(web.admin), 'tessera_discovery_connected')).toBe(1);
    expect(await get(web.ports.get('outbound/svc')!, '/via-discovery')).toBe(200);
    for (const p of proxies) expect(await ready(p)).toBe(true);

    // ---- cp1 back on its address: every proxy returns to it.
    cp1 = await startControlPlaneProcess(cp1.dir, cp1.configFile);
    const backAt = Date.now();
    expect(cp1.grpc).toBe(cp1Address);
    for (const p of proxies) await until('fails back to cp1', async () => (await current(p)) === cp1Address, 15_000, 20);
    const failbackMs = Date.now() - backAt;
    for (const p of proxies) expect(sumSeries(await metricsText(p.admin), 'tessera_control_plane_failbacks_total')).toBeGreaterThanOrEqual(1);
    // Config/Watch back on cp1, which never had cp2's deny policy.
    await until('api config from cp1 again', async () => (await get(web.ports.get('outbound/api')!, '/blocked')) === 200, 15_000);
    await until('cp2 lost its Discovery/Watch stream to cp1', async () => sumSeries(await cp2Metrics(), 'tessera_cp_discovery_watchers') === 0, 15_000);
    // Renewals are cp1's again: an SVID cp1 issued after its restart.
    for (const p of proxies) await until('renewed by cp1 after the failback', async () => (await servesFrom(p, cp1)) && !cp1Before.includes(await serial(p)), 20_000, 500);
    expect(await get(web.ports.get('outbound/svc')!, '/via-discovery')).toBe(200);

    // ---- cp1 shut down in order (SIGTERM: its streams end with OK, "go elsewhere"): the proxies move to cp2 again.
    // On a loaded machine a slow call can move a proxy away and back meanwhile: start from every proxy on cp1.
    for (const p of proxies) await until('on cp1 before it stops', async () => (await current(p)) === cp1Address, 15_000, 20);
    const failoversBefore = await Promise.all(proxies.map(async (p) => sumSeries(await metricsText(p.admin), 'tessera_control_plane_failovers_total')));
    expect(await cp1.stop()).toBe(0);
    for (const p of proxies) await until('moves to cp2 when cp1 stops', async () => (await current(p)) === cp2Address, 15_000);
    for (const [i, p] of proxies.entries()) expect(sumSeries(await metricsText(p.admin), 'tessera_control_plane_failovers_total')).toBeGreaterThan(failoversBefore[i]!);
    await until('discovery watched on cp2 again', async () => sumSeries(await cp2Metrics(), 'tessera_cp_discovery_watchers') === 1, 15_000);

    await load.stop();
    console.info(`cp-failover: ${load.ok} requests, ${load.failures.length} failed; both proxies on cp2 ${failoverMs} ms after SIGKILL, back on cp1 ${failbackMs} ms after it was ready (failbackInterval 1s)`);
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(100);
    for (const p of proxies) expect(await ready(p)).toBe(true);
  }, 150_000);

  test('one SignSvid call goes on to the next replica within its deadline (refused port, black hole); a refusal does not', async () => {
    const refusedPort = await freePort();
    // Accepts and never answers: a replica whose host is up and whose process hangs.
    const held: Socket[] = [];
    const hole = createTcpServer((sock) => void held.push(sock));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const holeAddress = `127.0.0.1:${(hole.address() as AddressInfo).port}`;
    const td = TrustDomain.parse(TD);
    const bundles = new TrustBundleSet([TrustBundle.parse(td, await readFile(join(cp2.dataDir, 'bundle.pem'), 'utf8'))]);
    const endpoints = new ControlPlaneEndpoints({ addresses: [`127.0.0.1:${refusedPort}`, holeAddress, cp2Address], clock: { nowMs: () => Date.now() } });
    const client = new ControlPlaneClient({ endpoints, trustDomain: td, bundles: () => bundles, clock: { nowMs: () => Date.now() }, deadlineClock: systemClock, callTimeoutMs: 8_000 });
    try {
      const token = await createJoinToken(cp2.dataDir, `spiffe://${TD}/ns/default/sa/probe`);
      const signed = await client.attest(await createCsr(generateKeyPair(), {}), { kind: 'join_token', token });
      expect(new X509Certificate(signed.chainDer[0]!).subjectAltName).toBe(`URI:spiffe://${TD}/ns/default/sa/probe`);
      expect(endpoints.current()).toBe(cp2Address);
      expect(endpoints.state().failovers).toBe(2);
      expect(held.length).toBeGreaterThan(0); // the black hole was really tried
      // An answer from a live replica (a spent token is refused) is final: no failover.
      const refused = await client.attest(await createCsr(generateKeyPair(), {}), { kind: 'join_token', token }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(refused?.message).toMatch(/^(PERMISSION_DENIED|UNAUTHENTICATED|FAILED_PRECONDITION) TESSERA_ERR_/);
      expect(endpoints.current()).toBe(cp2Address);
      expect(endpoints.state().failovers).toBe(2);
    } finally {
      client.close();
      for (const sock of held) sock.destroy();
      hole.close();
    }
  }, 30_000);
});
