// Mesh routing end to end (issue 19 "Done when", DESIGN.md section 11) with real processes on loopback: three
// replicas of `api`, each a small app behind its own proxy whose inbound listener (127.0.0.2-4) registers itself,
// and a caller whose outbound `service: api` listener balances every request. Balance over keep-alive connections
// and over one HTTP/2 connection, a slow replica avoided, the forward proxy (curl -x, curl -p), TCP per
// connection and through CONNECT, a service with no endpoints, endpoints that present another SPIFFE ID, and a
// replica's proxy killed with SIGKILL under load.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TD } from '../helpers/control-plane.js';
import { API_ID, balanceReport, failures, h2Load, Mesh, type Outcome, ReplicaApp, SERVICE, SERVICE_TCP, shares, startLoad, tcpRead } from '../helpers/mesh-replicas.js';
import { freePort } from '../helpers/free-port.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { makeTempDir, run } from '../helpers/run.js';
import { until } from '../helpers/until.js';

let mesh: Mesh;
let cleanup: () => Promise<void>;
let names: string[];

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  mesh = await Mesh.start(dir, { replicas: 3, h2: true, tcp: true });
  names = mesh.replicas.map((r) => r.name);
  // Registration → control plane → the caller's watch: wait (bounded) until every replica answers through it.
  await mesh.waitUntilAllAnswer();
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await cleanup?.();
});

/** curl, one line per URL on stdout: "status replica tessera-error" (the bodies are dropped). */
function curl(args: readonly string[], urls: readonly string[], env?: NodeJS.ProcessEnv) {
  const out = urls.flatMap((u) => ['-o', '/dev/null', u]);
  return run('curl', ['-sS', '--max-time', '10', '-w', '%{http_code} %header{x-replica} %header{x-tessera-error}\\n', ...args, ...out], env ? { env } : {});
}

/** Each replica answered 25–42 % (issue 19). */
function isEven(out: readonly Outcome[]): boolean {
  const s = shares(out, names);
  return names.every((n) => s[n]! >= 0.25 && s[n]! <= 0.42);
}

/**
 * A balanced load run, failed unless each replica answers 25–42 %. The balancer is latency-aware and rightly sends
 * less to a replica that answers slower; on a loaded 2-core CI machine a replica's process is now and then
 * descheduled for a stretch, so an uneven run is run again, up to three runs (each on its own path, so each run's
 * access-log lines stay apart), and the last must be even. The message has each replica's latency and the caller's view of it. Returns the
 * path of the even run.
 */
async function evenRun(listener: 'api' | 'api-h2', path: string, load: (path: string) => Promise<readonly Outcome[]>): Promise<string> {
  const reports: string[] = [];
  // Three runs at most: at load 5-6 on CI a replica was descheduled through two runs in a row.
  for (const p of [path, `${path}-again`, `${path}-third`]) {
    const out = await load(p);
    expect(failures(out)).toEqual([]);
    if (isEven(out)) return p;
    reports.push(balanceReport(out, names));
  }
  const view = JSON.stringify((await mesh.endpoints(listener)).map((e) => [e.address, e.state, e.ewmaMs, e.outstanding]));
  return expect.fail(`uneven three times: ${reports.join('; then ')}; caller /endpoints: ${view}`);
}

describe('mesh routing: balance', () => {
  test('3 replicas, 3,000 requests over keep-alive connections: each replica answers 25–42 %; /endpoints, metrics and the access log name them', async () => {
    const path = await evenRun('api', '/even', (p) => startLoad({ port: mesh.port('api'), concurrency: 12, total: 3_000, path: p }).done);

    const view = await mesh.endpoints();
    expect(view.map((e) => e.address).sort()).toEqual(mesh.replicas.map((r) => r.address).sort());
    for (const e of view) {
      expect(e.spiffeId).toBe(API_ID);
      expect(typeof e.ewmaMs).toBe('number');
      expect(typeof e.outstanding).toBe('number');
    }
    const m = await metricsText(mesh.client.admin);
    expect(sumSeries(m, 'tessera_endpoints', { service: SERVICE, state: 'ready' })).toBe(3);
    // One pool per endpoint: keep-alive upstream connections, not a handshake per request.
    expect(sumSeries(m, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBeLessThan(300);

    await until('3,000 access-log lines', async () => (await mesh.accessLog(path)).length >= 3_000, 10_000);
    const log = await mesh.accessLog(path);
    expect(log.length).toBe(3_000);
    const byUpstream = new Map<unknown, number>();
    for (const r of log) byUpstream.set(r.upstream, (byUpstream.get(r.upstream) ?? 0) + 1);
    expect([...byUpstream.keys()].sort()).toEqual(mesh.replicas.map((r) => r.address).sort());
  }, 60_000);

  test('HTTP/2: 1,500 requests multiplexed over ONE connection are balanced per request: each replica answers 25–42 %', async () => {
    await until('the caller knows the HTTP/2 endpoints', async () => (await mesh.endpoints('api-h2')).length === 3, 20_000);
    await evenRun('api-h2', '/h2', (p) => h2Load({ port: mesh.port('api-h2'), concurrency: 12, total: 1_500, path: p }));
  }, 60_000);

  // 1,500 requests: a balancer blind to latency gives the slow replica a third of them, at any count; one that avoids
  // it has learned its latency within the first few dozen. (The even runs above keep their size: a shorter run is
  // more at the mercy of a replica descheduled for a stretch on a loaded machine, and 1,500 went uneven twice.)
  test('one replica answers 50 ms slower: it receives under 15 % of 1,500 requests', async () => {
    const slow = mesh.replicas.find((r) => r.name === 'r2')!;
    slow.app.delayMs = 50;
    try {
      const out = await startLoad({ port: mesh.port('api'), concurrency: 12, total: 1_500, path: '/slow' }).done;
      expect(failures(out)).toEqual([]);
      const s = shares(out, names);
      expect(s[slow.name], balanceReport(out, names)).toBeLessThan(0.15);
    } finally {
      slow.app.delayMs = 0;
    }
  }, 60_000);
});

describe('mesh routing: forward proxy (mode: http-proxy)', () => {
  test('curl -x and http_proxy reach the service by host, balanced per request; an unknown host is 503 unknown_service', async () => {
    const proxy = `http://127.0.0.1:${mesh.port('mesh')}`;
    const urls = Array.from({ length: 20 }, (_, i) => `http://${SERVICE}/fwd/${i}`);
    const viaX = await curl(['-x', proxy], urls);
    expect(viaX.code, viaX.stderr).toBe(0);
    const lines = viaX.stdout.trim().split('\n');
    expect(lines).toHaveLength(20);
    for (const l of lines) expect(l).toMatch(/^200 r\d\b/);
    // One client connection, requests balanced per request: more than one replica answered.
    expect(new Set(lines.map((l) => l.split(' ')[1])).size).toBeGreaterThan(1);

    const viaEnv = await curl([], [`http://${SERVICE}/env`], { ...process.env, http_proxy: proxy, HTTP_PROXY: proxy, no_proxy: '', NO_PROXY: '' });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(viaEnv.stdout).toMatch(/^200 r\d\b/);

    const unknown = await curl(['-x', proxy], ['http://no-such-service/x']);
    expect(unknown.stdout.trim()).toBe('503  unknown_service');
  });

  test('an unknown service is counted alike by plain HTTP and CONNECT: a 503 in tessera_requests_total, not a broken limit', async () => {
    const proxy = `http://127.0.0.1:${mesh.port('mesh')}`;
    const count = async () => {
      const m = await metricsText(mesh.client.admin);
      return { served: sumSeries(m, 'tessera_requests_total', { direction: 'outbound', listener: 'mesh', code: '503' }), rejected: sumSeries(m, 'tessera_requests_rejected_total', { direction: 'outbound', reason: 'unknown_service' }) };
    };
    const before = await count();
    await curl(['-x', proxy], ['http://no-such-service-a/x']);
    await curl(['-p', '-x', proxy], ['http://no-such-service-b/x']);
    await until('both counted', async () => (await count()).served === before.served + 2);
    // Before 2026-12-06 the CONNECT form also counted a rejection (the plain form did not).
    expect((await count()).rejected).toBe(0);
  });

  test('curl -p: a CONNECT tunnel to the service carries the app protocol to one of its replicas', async () => {
    const proxy = `http://127.0.0.1:${mesh.port('mesh')}`;
    const r = await curl(['-v', '-p', '-x', proxy], [`http://${SERVICE}/tunnel`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`CONNECT ${SERVICE}:80 HTTP/1.1`));
    expect(r.stderr).toMatch(/< HTTP\/1\.[01] 200/);
    expect(r.stdout).toMatch(/^200 r\d\b/);
  });
});

describe('mesh routing: TCP', () => {
  test('connections are balanced per connection; a CONNECT tunnel through the forward proxy reaches a tcp endpoint', async () => {
    await until('the caller knows the TCP endpoints', async () => (await mesh.endpoints('api-tcp')).length === 3, 20_000);
    const got: string[] = [];
    for (let i = 0; i < 30; i++) got.push(await tcpRead(mesh.port('api-tcp')));
    for (const g of got) expect(names).toContain(g);
    // One connection at a time: P2C over latency gives the two cheapest replicas 2/3 and 1/3 of the picks at least.
    expect(new Set(got).size, got.join(' ')).toBeGreaterThanOrEqual(2);

    const tunnel = await tcpRead(mesh.port('mesh'), `CONNECT ${SERVICE_TCP}:9000 HTTP/1.1\r\nHost: ${SERVICE_TCP}:9000\r\n\r\n`);
    expect(tunnel).toMatch(/^HTTP\/1\.1 200[^\r]*\r\n(?:[^\r]+\r\n)*\r\nr\d$/);
  });
});

describe('mesh routing: bad input', () => {
  test('a service with no endpoints: 503 with x-tessera-error: no_endpoints; its log line has no peer and no upstream', async () => {
    const out = await startLoad({ port: mesh.port('none'), concurrency: 1, total: 3, path: '/none' }).done;
    for (const o of out) {
      expect(o.status).toBe(503);
      expect(o.tesseraError).toBe('no_endpoints');
    }
    // Nothing was dialed: `peer` null and `upstream` left out (metrics.md, Access log), never a placeholder.
    await until('3 access-log lines of /none', async () => (await mesh.accessLog('/none')).length >= 3, 10_000);
    for (const line of await mesh.accessLog('/none')) {
      expect(line).toMatchObject({ status: 503, error: 'no_endpoints', peer: null });
      expect(line).not.toHaveProperty('upstream');
    }
  });

  test('endpoints whose listener presents another SPIFFE ID (a static file entry, a self-registration advertising another workload): refused by secure naming, counted, ejected; no request fails', async () => {
    // Another workload (sa/other) with two listeners. The static file says one of them is an api endpoint with
    // api's ID; a proxy of api registers itself (its own ID, so the control plane accepts it) but advertises the
    // other one. Whoever dials either meets sa/other's SVID.
    const decoy = await ReplicaApp.start('decoy');
    const liarApp = await ReplicaApp.start('liar');
    mesh.apps.push(decoy, liarApp);
    const other = await mesh.startProxy(
      'other',
      `spiffe://${TD}/ns/default/sa/other`,
      `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${decoy.port} }\n  - { name: app2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${decoy.port} }\n`,
    );
    const advertised = `127.0.0.1:${other.ports.get('inbound/app')}`;
    const listed = `127.0.0.1:${other.ports.get('inbound/app2')}`;
    const before = await metricsText(mesh.client.admin);
    await mesh.writeStaticEndpoints({ [SERVICE]: [{ address: listed, spiffeId: API_ID }] });
    const liar = await mesh.startProxy(
      'liar',
      API_ID,
      `inbound:\n  - { name: app, listen: 127.0.0.20:${await freePort('127.0.0.20')}, forwardTo: 127.0.0.1:${liarApp.port}, service: ${SERVICE}, advertise: ${advertised} }\n`,
    );
    const bad = [advertised, listed];
    await until('the caller learned both misdirected endpoints', async () => {
      const view = await mesh.endpoints();
      return bad.every((a) => view.some((e) => e.address === a));
    }, 20_000);
    const load = startLoad({ port: mesh.port('api'), concurrency: 6, path: '/misdirected' });
    try {
      await until('both misdirected endpoints ejected', async () => {
        const view = await mesh.endpoints();
        return bad.every((a) => view.find((e) => e.address === a)?.state === 'ejected');
      }, 20_000);
    } finally {
      const out = await load.stop();
      expect(failures(out)).toEqual([]);
      expect(out.length).toBeGreaterThan(0);
    }
    expect(decoy.received).toBe(0);
    expect(liarApp.received).toBe(0);
    const after = await metricsText(mesh.client.admin);
    const idMismatch = { direction: 'outbound', result: 'failure', reason: 'id_mismatch' };
    expect(sumSeries(after, 'tessera_tls_handshakes_total', idMismatch) - sumSeries(before, 'tessera_tls_handshakes_total', idMismatch)).toBeGreaterThanOrEqual(2);
    expect(sumSeries(after, 'tessera_ejections_total', { service: SERVICE }) - sumSeries(before, 'tessera_ejections_total', { service: SERVICE })).toBeGreaterThanOrEqual(2);

    expect(await liar.stop()).toBe(0);
    await mesh.writeStaticEndpoints({});
    await until('the liar withdrawn', async () => !(await mesh.endpoints()).some((e) => e.address === advertised), 20_000);
    await until('the static entry withdrawn', async () => !(await mesh.endpoints()).some((e) => e.address === listed), 20_000);
  }, 60_000);
});

describe('mesh routing: a replica dies', () => {
  test('kill -9 of a replica proxy under load: 0 failed GETs; POSTs in flight to it fail 502/503 once and are never retried', async () => {
    const victim = mesh.replicas.find((r) => r.name === 'r0')!;
    for (const a of mesh.apps) {
      a.delayMs = 20; // GETs in flight at the victim when it dies: they must be retried elsewhere
      a.postDelayMs = 300; // POSTs in flight at the victim when it dies: they must fail, not run twice
    }
    try {
      const gets = startLoad({ port: mesh.port('api'), concurrency: 8, method: 'GET', path: '/kill', idPrefix: 'kill' });
      const posts = startLoad({ port: mesh.port('api'), concurrency: 6, method: 'POST', path: '/kill', idPrefix: 'kill' });
      await until('GETs flowing and a POST in flight at the victim', () => gets.outcomes.length > 100 && victim.app.pendingPosts.size > 0, 15_000, 5);
      // Unanswered by the app when its proxy dies: their answers cannot reach the caller any more.
      const inFlightAtVictim = [...victim.app.pendingPosts];
      victim.proxy.child.kill('SIGKILL');
      const killedAt = Date.now();
      const getsAtKill = gets.outcomes.length;
      // Steady load goes on through the failure: at least 3 s and 300 more GETs.
      await until('load after the kill', () => Date.now() - killedAt > 3_000 && gets.outcomes.length > getsAtKill + 300, 30_000);
      const getOut = await gets.stop();
      const postOut = await posts.stop();

      expect(failures(getOut)).toEqual([]);
      const seenBy = (id: string) => mesh.apps.reduce((n, a) => n + (a.seen.get(id) ?? 0), 0);
      // No POST was executed twice, whatever its outcome.
      expect(postOut.filter((o) => seenBy(o.id) > 1).map((o) => o.id)).toEqual([]);
      // The POSTs that were at the victim's app when it died failed with a clear 502/503 (never retried elsewhere).
      expect(inFlightAtVictim.length).toBeGreaterThan(0);
      for (const id of inFlightAtVictim) {
        const o = postOut.find((x) => x.id === id)!;
        expect(o.status, `${id}: ${JSON.stringify(o)}`).toBeGreaterThanOrEqual(502);
        expect(o.status).toBeLessThanOrEqual(503);
        expect(o.tesseraError).toBeTruthy();
        expect(seenBy(id)).toBe(1);
      }
      // Any other failed POST also failed clearly and reached at most one app.
      for (const o of postOut.filter((x) => x.status !== 200)) {
        expect([502, 503], JSON.stringify(o)).toContain(o.status);
        expect(seenBy(o.id)).toBeLessThanOrEqual(1);
      }
      const m = await metricsText(mesh.client.admin);
      expect(sumSeries(m, 'tessera_retries_total', { service: SERVICE })).toBeGreaterThan(0);
      await until('the dead endpoint left the ready set', async () => !(await mesh.endpoints()).some((e) => e.address === victim.address && e.state === 'ready'), 20_000);
    } finally {
      for (const a of mesh.apps) {
        a.delayMs = 0;
        a.postDelayMs = 0;
      }
    }
  }, 90_000);
});
