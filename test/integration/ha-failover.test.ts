// Three control-plane replicas on one real PostgreSQL (issue 20, DESIGN.md section 12), proxies spread across them:
// each lists all three addresses with a different one first. A web → api mTLS pair carries keep-alive requests
// while the replica that leads (and that api prefers) is killed with SIGKILL: no request fails, api moves to
// another replica, the leadership passes on with a higher term, and every proxy keeps renewing its short-lived
// SVID (serials change after the kill; the shared inventory, read on a surviving replica, holds each new serial
// as issued after the kill). The killed replica started again on its port joins the same CA and api fails back.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { TD } from '../helpers/control-plane.js';
import {
  API_ID,
  caShape,
  caStatus,
  currentControlPlane,
  dbQuery,
  type HaReplica,
  keepAliveLoad,
  leaderName,
  proxyCerts,
  startHaProxy,
  startHaReplica,
  startHaReplicas,
  WEB_ID,
} from '../helpers/ha-mesh.js';
import { openPostgresDatabase, type PostgresDatabase } from '../helpers/postgres-database.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const DB_ID = `spiffe://${TD}/ns/default/sa/db`;
/** Renewal at half-life: about every 6 s, so renewals must happen while the killed replica is gone. */
const CP_EXTRA = 'svid: { ttl: 12s, backdate: 1s }';

let server: PostgresDatabase;
let dir: string;
let cleanup: () => Promise<void>;
let app: Server;
/** Leader first: it is the one killed. */
let replicas: HaReplica[] = [];
let api: ProxyProcess;
let web: ProxyProcess;
let db: ProxyProcess;

beforeAll(async () => {
  server = await openPostgresDatabase();
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const started = await startHaReplicas(dir, server.url, 3, { extra: CP_EXTRA });
  await until('a leader', async () => (await leaderName(server.url)) !== undefined, 15_000, 100);
  const leader = (await leaderName(server.url))!;
  replicas = [...started].sort((a, b) => Number(b.name === leader) - Number(a.name === leader));
  const [r1, r2, r3] = replicas as [HaReplica, HaReplica, HaReplica];
  const inbound = `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`;
  // api prefers the leader; web and db the other two: each replica serves one proxy first.
  [api, db] = await Promise.all([startHaProxy(dir, 'api', API_ID, r1, [r2, r3], inbound), startHaProxy(dir, 'db', DB_ID, r3, [r1, r2], inbound)]);
  web = await startHaProxy(dir, 'web', WEB_ID, r2, [r3, r1], `outbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API_ID} }\n`);
}, 120_000);

afterAll(async () => {
  for (const p of [web, api, db]) await p?.stop();
  for (const r of replicas) await r.stop();
  app?.close();
  await server?.destroy();
  await cleanup?.();
});

interface InventoryRow {
  readonly serial: string;
  readonly spiffeId: string;
  readonly issuedAt: string;
}

const inventory = (r: HaReplica) => adminRequest<InventoryRow[]>(r.dataDir, 'GET', '/v1/certs', undefined, 10_000);

describe('three control-plane replicas on one PostgreSQL', () => {
  test('the leading replica killed under keep-alive load: 0 failed requests, leadership and renewals continue on the others', async () => {
    const [r1, r2, r3] = replicas as [HaReplica, HaReplica, HaReplica];
    const proxies = { api, web, db };
    expect(await currentControlPlane(api)).toBe(r1.grpc);
    expect(await currentControlPlane(web)).toBe(r2.grpc);
    expect(await currentControlPlane(db)).toBe(r3.grpc);
    // One CA everywhere, one inventory everywhere: what one replica issued, another lists.
    const shapes = await Promise.all(replicas.map(async (r) => caShape(await caStatus(r))));
    expect(new Set(shapes).size).toBe(1);
    const r2Inventory = (await inventory(r2)).map((row) => row.serial);
    for (const p of Object.values(proxies)) expect(r2Inventory).toContain((await proxyCerts(p)).serial);
    const termBefore = Number((await dbQuery<{ term: string }>(server.url, 'SELECT term FROM leader_term'))[0]!.term);

    const load = keepAliveLoad(web.ports.get('outbound/api')!);
    try {
      await until('traffic flows', () => load.ok >= 20, 15_000, 50);
      const before = Object.fromEntries(await Promise.all(Object.entries(proxies).map(async ([n, p]) => [n, (await proxyCerts(p)).serial] as const)));

      const killedAt = Date.now();
      r1.proc.kill('SIGKILL');
      await until('api moves to a surviving replica', async () => [r2.grpc, r3.grpc].includes((await currentControlPlane(api)) ?? ''), 15_000, 50);
      // The advisory lock died with r1's session: r2 or r3 takes the lead with a higher fencing term.
      await until('a surviving replica leads', async () => [r2.name, r3.name].includes((await leaderName(server.url)) ?? ''), 15_000, 100);
      expect(Number((await dbQuery<{ term: string }>(server.url, 'SELECT term FROM leader_term'))[0]!.term)).toBeGreaterThan(termBefore);

      // Every proxy renews after the kill; the new serial is in the shared inventory, issued after the kill.
      for (const [name, p] of Object.entries(proxies)) {
        await until(`${name} renewed after the kill`, async () => (await proxyCerts(p)).serial !== before[name], 30_000, 250);
        const serial = (await proxyCerts(p)).serial;
        const row = (await inventory(r3)).find((x) => x.serial === serial);
        expect(row, `${name}'s new serial ${serial} in r3's inventory`).toBeDefined();
        expect(Date.parse(row!.issuedAt)).toBeGreaterThanOrEqual(killedAt - 1_000);
      }
      // And once more for api (it renews against the replica it failed over to, still without r1).
      const apiSecond = (await proxyCerts(api)).serial;
      await until('api renewed a second time', async () => (await proxyCerts(api)).serial !== apiSecond, 20_000, 250);
      expect(load.failures).toEqual([]);

      // r1 back on its port: it loads the same CA from the database and api returns to it.
      const again = await startHaReplica(r1.dir, r1.name, r1.configFile);
      replicas[0] = again;
      expect(again.grpc).toBe(r1.grpc);
      expect(caShape(await caStatus(again))).toBe(shapes[0]);
      await until('api fails back to r1', async () => (await currentControlPlane(api)) === r1.grpc, 15_000, 50);
      await until('traffic still flows after the failback', () => load.ok >= 200, 20_000, 50);
    } finally {
      await load.stop();
    }
    console.info(`ha-failover: ${load.ok} requests, ${load.failures.length} failed`);
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(200);
  }, 120_000);
});
