// A proxy cut off from the control plane across `ca prepare` + `ca activate` (audit 55b F1): it reaches the control
// plane through a TCP relay in this test that can cut every connection and black-hole new ones, as a partition does.
// It holds the old root only when the partition heals, and still reconnects: the control plane's own SVID stays signed
// by the retired authority (self-signer.ts), so the proxy verifies it, receives the bundle with the new root and
// renews onto the new authority. Before, activate reissued that SVID from the new authority and the proxy failed every
// reconnect ("unable to get local issuer certificate") until its SVID expired. Then the retire still completes once
// the old authority's SVIDs expire (the control plane's own do not hold it), the control plane serves an SVID of the
// new authority, and a proxy connection cut again reconnects and renews. Real control plane, real `tessera proxy`.
import { copyFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { createJoinToken, type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;

/** A loopback TCP relay to `target`; cut() ends every relayed connection and holds new ones unanswered until heal(). */
function partitionableRelay(target: { host: string; port: number }) {
  let cut = false;
  const relayed = new Set<Socket>();
  const held = new Set<Socket>();
  const server: Server = createServer((c) => {
    c.on('error', () => {});
    if (cut) {
      held.add(c);
      c.on('close', () => held.delete(c));
      return;
    }
    const u = connect(target.port, target.host);
    u.on('error', () => c.destroy());
    c.on('error', () => u.destroy());
    c.pipe(u);
    u.pipe(c);
    relayed.add(c).add(u);
    c.on('close', () => { u.destroy(); relayed.delete(c); });
    u.on('close', () => { c.destroy(); relayed.delete(u); });
  });
  return {
    server,
    listen: () => new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port))),
    cut: () => {
      cut = true;
      for (const s of relayed) s.destroy();
    },
    heal: () => {
      cut = false;
      for (const s of held) s.destroy();
    },
    close: () => {
      for (const s of [...relayed, ...held]) s.destroy();
      server.close();
    },
  };
}

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let relay: ReturnType<typeof partitionableRelay>;
let proxy: ProxyProcess | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const cpDir = join(dir, 'cp');
  // Short SVIDs: the proxy renews within seconds, and the old authority's last SVIDs expire soon after the activate.
  cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir, 'svid: { ttl: 20s, maxTtl: 20s, backdate: 3s }'));
  const [host, port] = cp.grpc.split(':') as [string, string];
  relay = partitionableRelay({ host, port: Number(port) });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  relay?.close();
  await cp?.stop();
  await cleanup?.();
});

interface ProxyCerts {
  serial: string;
  bundles: { trustDomain: string; fingerprints: string[] }[];
}
interface CpCerts {
  signingAuthority: string;
  servedAuthority: string | null;
}
interface CaStatus {
  signingAuthority: string;
  servedAuthority?: string | null;
  authorities: { id: string; state: string; rootFingerprint: string; liveSvids: number }[];
}
const proxyCerts = async (p: ProxyProcess) => (await (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json()) as ProxyCerts;
const cpCerts = async () => (await (await fetch(`http://${cp.admin}/certs`)).json()) as CpCerts;
const caStatus = () => adminRequest<CaStatus>(cp.dataDir, 'GET', '/v1/ca');
const trusted = async (p: ProxyProcess) => (await proxyCerts(p)).bundles.find((b) => b.trustDomain === TD)?.fingerprints ?? [];
/** The authority that signed the proxy's current SVID, from the control plane's inventory. */
const authorityOf = async (p: ProxyProcess) => {
  const serial = (await proxyCerts(p)).serial;
  return (await adminRequest<{ serial: string; authority: string }[]>(cp.dataDir, 'GET', '/v1/certs')).find((x) => x.serial === serial)?.authority;
};
/** A wait that, failing, shows why the proxy could not reach the control plane (its log lines saying so). */
const awaitProxy = (p: ProxyProcess, what: string, cond: () => Promise<boolean>, timeoutMs: number) =>
  until(what, cond, timeoutMs, 200).catch((e: Error) => {
    const why = p.stderr().split('\n').filter((l) => /local issuer|UNAVAILABLE|unknown_ca/.test(l)).slice(-3).join('\n');
    throw new Error(`${e.message}\n${why}`);
  });

test('partitioned across prepare + activate: reconnects with the old root, receives the new one, renews onto it; the retire then completes', async () => {
  const relayPort = await relay.listen();
  // The operator's bootstrap file: the bundle of before the rotation (the old root only), never updated.
  const bootstrap = join(dir, 'bootstrap-bundle.pem');
  await copyFile(join(cp.dataDir, 'bundle.pem'), bootstrap);
  await writeFile(join(dir, 'api.token'), await createJoinToken(cp.dataDir, API, 600_000), { mode: 0o600 });
  const config = join(dir, 'api.yaml');
  await writeFile(config, [`identity:`, `  controlPlane: { address: 127.0.0.1:${relayPort}, bundleFile: ${bootstrap}, joinTokenFile: ./api.token }`, 'inbound:', '  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9, protocol: http }', 'admin: { listen: 127.0.0.1:0 }', 'telemetry: { accessLog: off }', ''].join('\n'));
  proxy = await startProxyProcess(config, 30_000);
  const p = proxy;
  const oldId = (await caStatus()).signingAuthority;
  await until('the proxy holds the old root', async () => (await trusted(p)).length === 1, 10_000);

  // ---- the partition: the prepare's push never reaches the proxy, and the activate happens before it heals.
  relay.cut();
  const prepared = await tessera(['ca', 'prepare', '--data-dir', cp.dataDir, '--json']);
  expect(prepared.code, prepared.stderr).toBe(0);
  const newId = (JSON.parse(prepared.stdout) as { prepared: string }).prepared;
  const activated = await tessera(['ca', 'activate', '--data-dir', cp.dataDir]);
  expect(activated.code, activated.stderr).toBe(0);
  expect((await trusted(p)).length).toBe(1);
  const [servedThen, statusThen] = [await cpCerts(), await caStatus()];
  relay.heal();

  const newRoot = statusThen.authorities.find((a) => a.id === newId)!.rootFingerprint;
  await awaitProxy(p, 'the reconnected proxy holds the new root', async () => (await trusted(p)).includes(newRoot), 30_000);
  // What was served is said: new SVIDs from the new authority, the control plane's own still from the retired one.
  expect(servedThen).toMatchObject({ signingAuthority: newId, servedAuthority: oldId });
  expect(statusThen.servedAuthority).toBe(oldId);
  await awaitProxy(p, 'the proxy renewed onto the new authority', async () => (await authorityOf(p)) === newId, 30_000);
  expect((await fetch(`http://127.0.0.1:${p.admin}/ready`)).status).toBe(200);

  // ---- the retire completes by itself once the proxy's SVIDs of the old authority expired; the control plane's own do not hold it.
  await until('the old authority removed', async () => (await caStatus()).authorities.every((a) => a.id !== oldId), 45_000, 250);
  await until("the control plane's own SVID of the new authority", async () => (await cpCerts()).servedAuthority === newId, 10_000);
  expect((await caStatus()).servedAuthority).toBe(newId);
  await awaitProxy(p, 'the proxy dropped the old root', async () => !(await trusted(p)).some((f) => f !== newRoot), 15_000);

  // ---- its connections cut again: it reconnects to the control plane now serving the new authority, and renews.
  const before = (await proxyCerts(p)).serial;
  relay.cut();
  relay.heal();
  await awaitProxy(p, 'a renewal over a new connection', async () => (await proxyCerts(p)).serial !== before, 30_000);
  expect(await authorityOf(p)).toBe(newId);
  expect((await fetch(`http://127.0.0.1:${p.admin}/ready`)).status).toBe(200);
}, 150_000);
