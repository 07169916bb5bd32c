// The fleet report with real processes: a control plane and two attested proxies (web → api). The api proxy
// reports right after start what its inbound listener serves; after a denied request, an audit-mode would-deny and
// an SVID rotation (TTL 12 s), the next report carries the new serial and the denials per policy with the caller.
// Reports are read back from the control plane's store (the SQLite file in its data dir, read-only), under the
// SPIFFE ID the proxy's SVID proves. A second api proxy runs `workers: 2`: its denials are counted in the listener
// workers and gathered by the primary, which alone reports. Exchanges are timed below a millisecond (access log),
// while the report's times stay whole milliseconds.
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ProxyReport } from '../../control-plane/src/store/store-contract.js';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
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
let api2: ProxyProcess;
let web: ProxyProcess;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

const POLICIES = `apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-allow-web }
spec:
  selector: ${API}
  action: ALLOW
  rules:
    - from: [${WEB}]
      to: { methods: [GET] }
---
apiVersion: tessera.dev/v1
kind: AuthorizationPolicy
metadata: { name: api-audit-no-legacy }
spec:
  selector: ${API}
  action: DENY
  mode: audit
  rules:
    - from: [${WEB}]
      to: { paths: ["/legacy/**"] }
`;

function call(method: string, path: string, to = 'api'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.ports.get(`outbound/${to}`)!, method, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

async function certs(p: ProxyProcess): Promise<{ serial: string; notAfter: string }> {
  return (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as never;
}

/** The reports the control plane stored, read from its SQLite file without taking part in its writes. */
function storedReports(): ProxyReport[] {
  const db = new DatabaseSync(join(cp.dataDir, 'tessera.db'), { readOnly: true });
  try {
    return (db.prepare('SELECT json FROM proxy_reports').all() as { json: string }[]).map((r) => JSON.parse(r.json) as ProxyReport);
  } finally {
    db.close();
  }
}

const reportOf = (id: string, p: ProxyProcess) => storedReports().find((r) => r.spiffeId === id && r.instance === `${hostname()}/${p.child.pid}`);

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const cpDir = join(dir, 'cp');
  await mkdir(cpDir, { recursive: true });
  const cfg = await writeControlPlaneConfig(cpDir, 'svid: { ttl: 12s, backdate: 5s }');
  await writeFile(join(cpDir, 'policies', 'api.yaml'), POLICIES);
  cp = await startControlPlaneProcess(cpDir, cfg);
  // api and web log their exchanges (the timing test reads them).
  const logged = 'telemetry: { accessLog: stdout }\n';
  api = await startAttestedProxy(cp, dir, 'api', API, `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`, logged);
  api2 = await startAttestedProxy(cp, dir, 'api2', API, `workers: 2\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${(app.address() as AddressInfo).port} }\n`);
  const outbound = (name: string, p: ProxyProcess) => `  - { name: ${name}, listen: 127.0.0.1:0, upstream: 127.0.0.1:${p.ports.get('inbound/app')}, spiffeId: ${API} }\n`;
  web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n${outbound('api', api)}${outbound('api2', api2)}`, logged);
}, 90_000);

afterAll(async () => {
  agent.destroy();
  await web?.stop();
  await api?.stop();
  await api2?.stop();
  await cp?.stop();
  app?.close();
  await cleanup?.();
});

describe('proxy fleet report', () => {
  test("after start the control plane holds what the api proxy's listener serves, under its proven ID", async () => {
    await until('the start report of api', () => reportOf(API, api) !== undefined, 15_000);
    const c = await certs(api);
    const r = reportOf(API, api)!;
    expect(r.served).toEqual([{ listener: 'app', serial: c.serial, notAfterMs: Date.parse(c.notAfter) }]);
    expect(r.checkedAtMs).toBeLessThanOrEqual(r.receivedAtMs + 1_000);
    expect(r.replica).not.toBe('');
    // web has no inbound listener: it reports nothing served, but it reports.
    await until('the start report of web', () => reportOf(WEB, web) !== undefined, 15_000);
    expect(reportOf(WEB, web)!.served).toEqual([]);
  });

  test('denials and audit-mode would-denies per policy, and the serial after a rotation, reach the control plane', async () => {
    const before = await certs(api);
    expect(await call('GET', '/x')).toBe(200);
    expect(await call('POST', '/x')).toBe(403); // no rule of api-allow-web matches: no single policy decided
    expect(await call('POST', '/x')).toBe(403);
    expect(await call('GET', '/legacy/a')).toBe(200); // allowed, but api-audit-no-legacy would deny it
    // The report after the next rotation (TTL 12 s) carries both.
    await until(
      'a report with the renewed serial',
      async () => {
        const r = reportOf(API, api);
        // A renewal can land between `before` and the requests (TTL 12 s, a loaded machine): wait for a report that
        // carries both the renewed serial and the denials, not the first one after a renewal.
        return r !== undefined && r.served[0]?.serial !== before.serial && r.served[0]?.serial === (await certs(api)).serial && r.denials.length >= 2;
      },
      30_000,
    );
    const r = reportOf(API, api)!;
    const rows = Object.fromEntries(r.denials.map((d) => [`${d.outcome} ${d.policy}`, d]));
    expect(rows['deny ']).toMatchObject({ count: 2, lastCaller: WEB });
    expect(rows['audit api-audit-no-legacy']).toMatchObject({ count: 1, lastCaller: WEB });
    expect(r.denials).toHaveLength(2);
    // The listeners' clock reads below a millisecond: what reaches uint64 fields is whole milliseconds.
    for (const d of r.denials) expect(Number.isInteger(d.lastAtMs), `lastAtMs ${d.lastAtMs}`).toBe(true);
    expect(Number.isInteger(r.checkedAtMs)).toBe(true);
    const m = await (await fetch(`http://127.0.0.1:${api.admin}/metrics`)).text();
    expect(m).toMatch(/tessera_fleet_reports_total\{result="sent"\} [2-9]/);
  }, 45_000);

  test('with workers: 2 the denials counted in the listener workers reach the control plane from the primary', async () => {
    expect(await call('POST', '/y', 'api2')).toBe(403);
    expect(await call('GET', '/legacy/b', 'api2')).toBe(200);
    // The primary gathers its workers' denials every 10 s from the first report on; rotations (TTL 12 s) report.
    await until('a report of the workers: 2 proxy with its denials', () => (reportOf(API, api2)?.denials.length ?? 0) === 2, 40_000);
    const r = reportOf(API, api2)!;
    const rows = Object.fromEntries(r.denials.map((d) => [`${d.outcome} ${d.policy}`, d]));
    expect(rows['deny ']).toMatchObject({ count: 1, lastCaller: WEB });
    expect(rows['audit api-audit-no-legacy']).toMatchObject({ count: 1, lastCaller: WEB });
    // What the workers' shared port serves, checked by the primary (the serial itself may have rotated since).
    expect(r.served.map((s) => s.listener)).toEqual(['app']);
  }, 50_000);

  test('exchanges are timed below a millisecond: access-log durationMs has fractions, time stays whole milliseconds', async () => {
    for (let i = 0; i < 20; i++) expect(await call('GET', `/timed/${i}`)).toBe(200);
    const lines = (p: ProxyProcess) =>
      p
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"log":"access"') && l.includes('/timed/'))
        .map((l) => JSON.parse(l) as { time: number; durationMs: number });
    // The access log flushes about once a second.
    await until('both sides logged the 20 requests', () => lines(api).length === 20 && lines(web).length === 20, 10_000);
    for (const p of [api, web]) {
      const entries = lines(p);
      for (const e of entries) {
        expect(Number.isInteger(e.time), `time ${e.time}`).toBe(true);
        expect(e.durationMs).toBeGreaterThanOrEqual(0);
      }
      // With a whole-millisecond clock every duration was an integer (a loopback request logged 0 or 1).
      expect(entries.filter((e) => !Number.isInteger(e.durationMs)).length).toBeGreaterThan(0);
    }
  }, 30_000);
});
