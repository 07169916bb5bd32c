// The control plane's PostgreSQL going away (issue 20, "Bad input and faults"), with a real server and real
// processes: a database that is not there at start (nothing listening, a wrong password) makes `tessera
// control-plane` exit non-zero with one coded line TESSERA_ERR_STORE_UNAVAILABLE (no password shown). A database
// killed while the control plane runs: SignSvid is refused with gRPC UNAVAILABLE carrying the code (and the join
// token it carried is not spent), operator commands say the same, /ready answers 503 naming the code and the log says
// it, Config/Watch keeps the connected proxies on their last snapshot and their mTLS traffic flows; after the restart
// issuance works again by itself, the replica is ready again, the proxies renew, and a policy changed while the
// database was down reaches them.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { controlPlaneClients, createJoinToken, errorCode, signSvid, TD } from '../helpers/control-plane.js';
import { freePort } from '../helpers/free-port.js';
import { API_ID, currentControlPlane, type HaReplica, keepAliveLoad, proxyCerts, startHaProxy, startHaReplicas, WEB_ID } from '../helpers/ha-mesh.js';
import { sumSeries } from '../helpers/prom-metrics.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { until } from '../helpers/until.js';

/** Renewal at half-life (15 s): an outage of a few seconds is ridden out on the SVID in hand. */
const CP_EXTRA = 'svid: { ttl: 30s, backdate: 1s }';
const DENY_BLOCKED = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-deny-blocked }\nspec:\n  selector: ${API_ID}\n  action: DENY\n  rules:\n    - from: [${WEB_ID}]\n      to: { paths: [/blocked] }\n`;

let server: PostgresServer;
let password: string;
let dir: string;
let cleanup: () => Promise<void>;
let app: Server;
let cp: HaReplica;
let api: ProxyProcess;
let web: ProxyProcess;

beforeAll(async () => {
  server = await startPostgres();
  password = decodeURIComponent(new URL(server.url).password);
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  // One replica: the proxies cannot fail over, so whatever they get during the outage is this replica's doing.
  [cp] = (await startHaReplicas(dir, server.url, 1, { extra: CP_EXTRA })) as [HaReplica];
  api = await startHaProxy(dir, 'api', API_ID, cp, [], `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`);
  web = await startHaProxy(dir, 'web', WEB_ID, cp, [], `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API_ID} }\n`);
}, 120_000);

afterAll(async () => {
  for (const p of [web, api]) await p?.stop();
  await cp?.stop();
  app?.close();
  await server?.destroy();
  await cleanup?.();
});

/** A control plane config on its own dir whose store URL is `url` (JSON-quoted: the password has quotes). */
async function startOnly(name: string, url: string) {
  const d = join(dir, name);
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, [`trustDomain: ${TD}`, `dataDir: ${d}`, 'listen: 127.0.0.1:0', 'adminListen: 127.0.0.1:0', `store: { kind: postgres, url: ${JSON.stringify(url)} }`, ''].join('\n'));
  return tessera(['control-plane', '--config', file], { timeoutMs: 30_000 });
}

async function cpMetric(name: string): Promise<number> {
  return sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), name);
}

function get(port: number, path: string): Promise<number> {
  return fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status);
}

describe('the database not there at start', () => {
  test('nothing listening, or a wrong password: exit non-zero, one coded line TESSERA_ERR_STORE_UNAVAILABLE, no password', async () => {
    const port = await freePort();
    for (const [name, url] of [
      ['nothing-listening', `postgres://tessera:${encodeURIComponent(password)}@127.0.0.1:${port}/tessera`],
      ['wrong-password', `postgres://tessera:not-${encodeURIComponent(password)}@127.0.0.1:${server.port}/tessera`],
    ] as const) {
      const out = await startOnly(name, url);
      expect(out.code, name).not.toBe(0);
      expect(out.stdout, name).not.toContain('ready');
      const coded = out.stderr.split('\n').filter((l) => l.includes('TESSERA_ERR_'));
      expect(coded, `${name}: ${out.stderr}`).toHaveLength(1);
      expect(coded[0]).toContain('TESSERA_ERR_STORE_UNAVAILABLE');
      expect(coded[0]).toContain(name === 'nothing-listening' ? `127.0.0.1:${port}` : 'password authentication failed');
      expect(out.stderr + out.stdout).not.toContain(password);
    }
  }, 60_000);
});

describe('the database lost while the control plane runs', () => {
  test('SignSvid refused UNAVAILABLE with the code, Config/Watch and traffic keep going, issuance comes back by itself', async () => {
    const load = keepAliveLoad(web.ports.get('outbound/api')!);
    const client = controlPlaneClients(cp.grpc, await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8'));
    try {
      await until('traffic flows', () => load.ok >= 20, 15_000, 50);
      expect(await cpMetric('tessera_config_watchers')).toBe(2);
      const id = `spiffe://${TD}/ns/outage/sa/late`;
      const token = await createJoinToken(cp.dataDir, id);
      const serialsBefore = await Promise.all([api, web].map(async (p) => (await proxyCerts(p)).serial));

      await server.kill();
      const downAt = Date.now();
      const refused = await signSvid(client.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
      expect(refused.err?.code, refused.err?.message).toBe(grpc.status.UNAVAILABLE);
      expect(errorCode(refused.err)).toBe('TESSERA_ERR_STORE_UNAVAILABLE');
      expect(refused.err?.message).not.toContain(password);
      // Operator commands get the same answer.
      const tokenCreate = await tessera(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', `spiffe://${TD}/ns/outage/sa/other`]);
      expect(tokenCreate.code).not.toBe(0);
      expect(tokenCreate.stderr).toContain('TESSERA_ERR_STORE_UNAVAILABLE');
      // The replica says it cannot serve issuance (readiness), and its log says why (audit F6: /ready stayed 200).
      const notReady = await fetch(`http://${cp.admin}/ready`);
      expect(notReady.status).toBe(503);
      expect(await notReady.text()).toContain('TESSERA_ERR_STORE_UNAVAILABLE');
      const storeFailureLogged = () => cp.stderr().split('\n').some((l) => l.includes('"msg":"a store operation failed"') && l.includes('"code":"TESSERA_ERR_STORE_UNAVAILABLE"'));
      await until('the store failure is logged', storeFailureLogged, 5_000, 50);
      // While it is down: the proxies stay connected to their last snapshot, traffic flows, nothing fails.
      const okAtKill = load.ok;
      await until('traffic keeps flowing with the database down', () => load.ok >= okAtKill + 100, 15_000, 50);
      expect(await cpMetric('tessera_config_watchers')).toBe(2);
      for (const p of [api, web]) expect(await currentControlPlane(p)).toBe(cp.grpc);
      expect(await get(web.ports.get('outbound/api')!, '/blocked')).toBe(200);
      expect(load.failures).toEqual([]);

      await server.restart();
      const upAt = Date.now();
      // Issuance is back by itself, and the refused call had not spent the token.
      let again = refused;
      await until(
        'SignSvid works again',
        async () => {
          again = await signSvid(client.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: token });
          return again.err === null;
        },
        30_000,
        250,
      );
      expect(again.res?.spiffe_id).toBe(id);
      const recoveredMs = Date.now() - upAt;
      await until('ready again (the write probe reached the database)', async () => (await fetch(`http://${cp.admin}/ready`)).status === 200, 15_000, 200);
      // The same command in-process (the binary ran it during the outage above).
      const created = await tesseraInProcess(['token', 'create', '--data-dir', cp.dataDir, '--spiffe-id', `spiffe://${TD}/ns/outage/sa/other`]);
      expect(created.code, created.stderr).toBe(0);
      // The proxies renew again (their first attempts may have met the outage).
      for (const [i, p] of [api, web].entries()) await until('a proxy renewed after the outage', async () => (await proxyCerts(p)).serial !== serialsBefore[i], 30_000, 250);
      expect(load.failures).toEqual([]);
      console.info(`ha-database-faults: database down ${upAt - downAt} ms, issuance back ${recoveredMs} ms after the restart; ${load.ok} requests, ${load.failures.length} failed`);
    } finally {
      client.close();
      await load.stop();
    }
    expect(load.failures).toEqual([]);
  }, 90_000);

  test('a policy changed while the database is down reaches the connected proxies once it is back', async () => {
    const port = web.ports.get('outbound/api')!;
    expect(await get(port, '/blocked')).toBe(200);
    const publishFailures = () => cp.stderr().split('\n').filter((l) => l.includes('publishing a config snapshot failed')).length;
    const failedBefore = publishFailures();
    await server.kill();
    try {
      await writeFile(join(cp.policiesDir, 'deny-blocked.yaml'), DENY_BLOCKED);
      // The policy watcher saw the file while the database is down, and its publish failed (no new snapshot version).
      await until('the new policy loaded and its publish failed with the database down', async () => (await cpMetric('tessera_policies_loaded')) === 2 && publishFailures() > failedBefore, 15_000, 50);
    } finally {
      await server.restart();
    }
    await until('the deny policy applies after the database is back', async () => (await get(port, '/blocked')) === 403, 20_000, 250).catch(async (e: Error) => {
      const loaded = await cpMetric('tessera_policies_loaded');
      const logged = cp.stderr().split('\n').filter((l) => /publish|snapshot/i.test(l)).slice(-3).join('\n');
      throw new Error(`${e.message}; the control plane has ${loaded} policies loaded; its log: ${logged}`);
    });
  }, 60_000);
});
