// `workers: 2` with real processes (dist/cli/tessera.js): a web → api pair, each proxy a primary with two listener
// workers on shared ports (SO_REUSEPORT). Requests succeed through both workers of each side, the aggregated
// /metrics counts every request once, a refusal on the primary's admin listener is counted, a rotated identity reaches every worker with no failed request, a stopped or
// killed worker does not make the summed counters go back, a killed worker is restarted and counted, and SIGTERM drains in-flight requests before the primary exits 0.
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { tlsGet } from '../helpers/tls-get.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

interface WorkerView {
  slot: number;
  pid: number | null;
  listening: boolean;
  identityGeneration: number;
  restarts: number;
  answering: boolean;
}

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: ReturnType<typeof createServer>;
/** Milliseconds the app waits before answering a request whose path starts with /slow. */
const SLOW_MS = 800;
let slowArrived = 0;
let api: ProxyProcess;
let web: ProxyProcess;
// A fresh client connection per request: the kernel spreads connections, not requests, over the workers.
const noKeepAlive = new Agent({ keepAlive: false });

function get(port: number, path = '/x'): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: noKeepAlive }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** `n` requests, `concurrency` at a time; the status of each (0: the request failed). */
async function load(port: number, n: number, concurrency = 8, path = '/x'): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        out.push(await get(port, path));
      }
    }),
  );
  return out;
}

async function admin<T>(p: ProxyProcess, path: string): Promise<T> {
  return (await fetch(`http://127.0.0.1:${p.admin}${path}`)).json() as Promise<T>;
}
const workers = async (p: ProxyProcess) => (await admin<{ workers: WorkerView[] }>(p, '/config')).workers;
const ready = async (p: ProxyProcess) => (await fetch(`http://127.0.0.1:${p.admin}/ready`)).status === 200;

/** The serial a fresh mTLS handshake to api's inbound port is served. */
async function servedSerial(certPem: string, keyPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: api.ports.get('inbound/app')!, cert: certPem, key: keyPem, ca: ca.bundlePem(), checkServerIdentity: () => undefined }, () => {
      const serial = s.getPeerX509Certificate()!.serialNumber.toLowerCase();
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

/** One request on a fresh mTLS connection to api's inbound port, as web; the raw answer ('' when it failed). */
async function direct(path: string): Promise<string> {
  const [certPem, keyPem] = await Promise.all([readFile(join(dir, 'web/svid.pem'), 'utf8'), readFile(join(dir, 'web/key.pem'), 'utf8')]);
  return tlsGet({ port: api.ports.get('inbound/app')!, certPem, keyPem, caPem: ca.bundlePem(), path }).then(
    (r) => r.answer,
    () => '',
  );
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = createServer((req, res) => {
    if (req.url?.startsWith('/slow')) {
      slowArrived++;
      setTimeout(() => res.end('slow'), SLOW_MS);
    } else res.end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  const appPort = (app.address() as AddressInfo).port;
  await writeFile(
    join(dir, 'api.yaml'),
    `workers: 2\nidentity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort} }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\nlimits: { drainTimeout: 10s }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'), 30_000);
  // Without the multiplexed transport each web worker pools several connections to api: both api workers get some.
  await writeFile(
    join(dir, 'web.yaml'),
    `workers: 2\nidentity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\ntransport: { multiplex: false }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'), 30_000);
}, 90_000);

afterAll(async () => {
  noKeepAlive.destroy();
  await web?.stop();
  await api?.stop();
  app?.close();
  await cleanup?.();
});

test('requests succeed through both workers of each side, and the aggregated /metrics counts each once', async () => {
  expect((await workers(api)).map((w) => w.listening)).toEqual([true, true]);
  await until('both proxies ready', async () => (await ready(api)) && (await ready(web)), 20_000);
  const statuses = await load(web.ports.get('outbound/api')!, 200);
  expect(statuses.filter((s) => s === 200).length).toBe(200);
  // web's pool may hold only a few connections to api: fresh connections straight to api spread over its workers.
  const answers = await Promise.all(Array.from({ length: 40 }, () => direct('/x')));
  expect(answers.filter((a) => !a.startsWith('HTTP/1.1 200'))).toEqual([]);
  // A request is counted when its exchange ends, a moment after the client has its answer.
  const counted = async (p: ProxyProcess, direction: string) => sumSeries(await metricsText(p.admin), 'tessera_requests_total', { direction, code: '200' });
  await until('every request counted', async () => (await counted(api, 'inbound')) >= 240 && (await counted(web, 'outbound')) >= 200);
  const [apiText, webText] = [await metricsText(api.admin), await metricsText(web.admin)];
  expect(sumSeries(apiText, 'tessera_requests_total', { direction: 'inbound', code: '200' })).toBe(240);
  expect(sumSeries(webText, 'tessera_requests_total', { direction: 'outbound', code: '200' })).toBe(200);
  for (const [text, name, total] of [[apiText, 'api', 240], [webText, 'web', 200]] as const) {
    const per = [0, 1].map((w) => sumSeries(text, 'tessera_worker_requests_total', { worker: String(w) }));
    expect(per.reduce((a, b) => a + b), name).toBe(total);
    expect(per.every((n) => n > 0), `${name} per worker: ${per}`).toBe(true);
    expect(sumSeries(text, 'tessera_worker_up')).toBe(2);
  }
  // The identity side is the primary's alone: one build_info series, not one per process.
  expect(sumSeries(apiText, 'tessera_build_info')).toBe(1);
  const cfg = await admin<{ listeners: { name: string; port: number }[] }>(api, '/config');
  expect(cfg.listeners).toEqual([expect.objectContaining({ name: 'app', port: api.ports.get('inbound/app') })]);
}, 60_000);

test("a refusal on the primary's admin listener is counted in tessera_requests_rejected_total{direction=\"admin\"}", async () => {
  const reasons = async () => sumSeries(await metricsText(api.admin), 'tessera_requests_rejected_total', { direction: 'admin', reason: 'bad_request' });
  const before = await reasons();
  // Not HTTP: the admin server answers 400 and counts the refusal as bad_request.
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: api.admin }, () => s.write('NOT HTTP\r\n\r\n'));
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  await until('the refusal counted', async () => (await reasons()) === before + 1, 5_000);
}, 20_000);

test('transport.sessionsPerPeer: 4: one multiplexing caller keeps four sessions to api, its streams spread over them', async () => {
  await writeFile(
    join(dir, 'web4.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\ntransport: { sessionsPerPeer: 4 }\n`,
  );
  const web4 = await startProxyProcess(join(dir, 'web4.yaml'), 30_000);
  const keep = new Agent({ keepAlive: true, maxSockets: 16 });
  try {
    const port = web4.ports.get('outbound/api')!;
    const once = () =>
      new Promise<number>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/x', agent: keep }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', () => resolve(0));
        req.end();
      });
    const statuses = await Promise.all(Array.from({ length: 64 }, once));
    expect(statuses.filter((c) => c !== 200)).toEqual([]);
    const text = await metricsText(web4.admin);
    expect(sumSeries(text, 'tessera_mux_sessions_active', { direction: 'outbound' })).toBe(4);
    expect(sumSeries(text, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(4);
    // At most sixteen streams (one per client connection in flight), spread over the four by the least-loaded rule
    // (test/unit/proxy/mux/mux-dialer.test.ts checks the spread); api's two workers got the sessions as the kernel
    // hashed them, which this test cannot fix.
    const streams = sumSeries(text, 'tessera_mux_streams_opened_total', { direction: 'outbound' });
    expect(streams).toBeGreaterThanOrEqual(4);
    expect(streams).toBeLessThanOrEqual(16);
  } finally {
    keep.destroy();
    await web4.stop();
  }
}, 60_000);

test('a rotated identity reaches every worker with no failed request', async () => {
  const webKey = await readFile(join(dir, 'web/key.pem'), 'utf8');
  const webCert = await readFile(join(dir, 'web/svid.pem'), 'utf8');
  const before = await admin<{ generation: number; serial: string }>(api, '/certs');
  let stop = false;
  const background = (async () => {
    const all: number[] = [];
    while (!stop) all.push(...(await load(web.ports.get('outbound/api')!, 20, 4)));
    return all;
  })();
  const next = await writeSvidFiles(ca, API, join(dir, 'api'));
  await until('the primary installed the new SVID', async () => (await admin<{ serial: string }>(api, '/certs')).serial === next.serial, 20_000);
  const generation = (await admin<{ generation: number }>(api, '/certs')).generation;
  expect(generation).toBeGreaterThan(before.generation);
  await until('every worker installed it', async () => (await workers(api)).every((w) => w.identityGeneration >= generation), 20_000);
  stop = true;
  const statuses = await background;
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  // Fresh handshakes land on either worker: every one is served the new SVID.
  const served = await Promise.all(Array.from({ length: 16 }, () => servedSerial(webCert, webKey)));
  expect(new Set(served)).toEqual(new Set([next.serial]));
}, 60_000);

/** api's summed traffic counters: they must never go down (Prometheus would read a reset). */
type Totals = { requests: number; count: number; inf: number; up: number };
async function apiTotals(): Promise<Totals> {
  const text = await metricsText(api.admin);
  return {
    requests: sumSeries(text, 'tessera_requests_total', { direction: 'inbound' }),
    count: sumSeries(text, 'tessera_request_duration_seconds_count', { direction: 'inbound' }),
    inf: sumSeries(text, 'tessera_request_duration_seconds_bucket', { direction: 'inbound', le: '+Inf' }),
    up: sumSeries(text, 'tessera_worker_up'),
  };
}

/** The counters of `now` that are below `then` (a request of an earlier test may be counted a moment late). */
const noLower = (now: Totals, then: Totals) => (['requests', 'count', 'inf'] as const).filter((k) => now[k] < then[k]).map((k) => `${k}: ${now[k]} < ${then[k]}`);

test('a stopped worker (SIGSTOP) misses the scrape, and the summed counters keep what it had counted', async () => {
  const before = await apiTotals();
  const [, stalled] = await workers(api);
  expect(sumSeries(await metricsText(api.admin), 'tessera_worker_requests_total', { worker: '1' })).toBeGreaterThan(0);
  process.kill(stalled!.pid!, 'SIGSTOP');
  try {
    const during = await apiTotals();
    expect(during.up).toBe(1);
    expect(noLower(during, before)).toEqual([]);
    // Its share of new connections would hang: the primary's ping goes unanswered and /ready says so (within two
    // 5 s heartbeat periods; killed and restarted only after 30 s, see the unit test).
    await until('api not ready', async () => !(await ready(api)), 15_000);
    expect(await (await fetch(`http://127.0.0.1:${api.admin}/ready`)).text()).toMatch(/worker 1 has not answered for \d+ s/);
    expect((await workers(api))[1]!.answering).toBe(false);
  } finally {
    process.kill(stalled!.pid!, 'SIGCONT');
  }
  await until('worker 1 answers again', async () => (await apiTotals()).up === 2, 10_000);
  await until('api ready again', () => ready(api), 10_000);
  expect((await workers(api))[1]!.pid).toBe(stalled!.pid);
  expect(noLower(await apiTotals(), before)).toEqual([]);
}, 40_000);

test('a killed worker is restarted and counted, traffic continues, and the summed counters do not go back', async () => {
  const [, victim] = await workers(api);
  expect(victim!.pid).toBeGreaterThan(0);
  expect(sumSeries(await metricsText(api.admin), 'tessera_worker_requests_total', { worker: '1' })).toBeGreaterThan(0);
  const counted = await apiTotals();
  process.kill(victim!.pid!, 'SIGKILL');
  await until('worker 1 restarted', async () => {
    const w = (await workers(api))[1]!;
    return w.restarts === 1 && w.listening && w.pid !== victim!.pid && w.pid !== null;
  }, 20_000);
  await until('api ready again', () => ready(api), 20_000);
  expect(sumSeries(await metricsText(api.admin), 'tessera_worker_restarts_total', { worker: '1' })).toBe(1);
  const after = await apiTotals();
  expect(after.up).toBe(2);
  expect(noLower(after, counted)).toEqual([]);
  // Fresh mTLS connections straight to api.
  const answers = await Promise.all(Array.from({ length: 40 }, () => direct('/x')));
  expect(answers.filter((a) => !a.startsWith('HTTP/1.1 200'))).toEqual([]);
  expect(sumSeries(await metricsText(api.admin), 'tessera_worker_requests_total', { worker: '1' })).toBeGreaterThan(0);
  // Through web, which holds session tickets from api's workers: a ticket the restarted worker cannot decrypt means
  // a full handshake there (with shared ticket keys it resumed, and the lone leaf was refused as unknown_ca).
  const before = sumSeries(await metricsText(web.admin), 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'success' });
  const viaWeb = await load(web.ports.get('outbound/api')!, 80, 8);
  expect(viaWeb.filter((s) => s !== 200)).toEqual([]);
  // Counted once api has spoken on the connection (a ticket or its answer), in a worker whose figures reach the
  // primary's /metrics with its next report: polled, not read once.
  await until('the new handshake counted', async () => sumSeries(await metricsText(web.admin), 'tessera_tls_handshakes_total', { direction: 'outbound', result: 'success' }) > before, 10_000, 100);
}, 60_000);

test('SIGTERM on the primary drains every worker: in-flight requests finish, then it exits 0', async () => {
  const pids = (await workers(api)).map((w) => w.pid!);
  slowArrived = 0;
  const inFlight = Promise.all(Array.from({ length: 16 }, () => direct('/slow')));
  await until('all 16 requests at the app', () => slowArrived === 16, 10_000, 10);
  const code = await api.stop(20_000);
  expect((await inFlight).filter((a) => !a.startsWith('HTTP/1.1 200'))).toEqual([]);
  expect(code).toBe(0);
  for (const pid of pids) expect(() => process.kill(pid, 0), `worker ${pid} still running`).toThrow();
}, 60_000);

test('a listen port another process holds fails the start with a coded error, from the primary before any worker starts', async () => {
  const holder = createTcpServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as AddressInfo).port;
  await writeFile(join(dir, 'taken.yaml'), `workers: 2\nidentity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:${port}, forwardTo: 127.0.0.1:1 }\nadmin: { listen: 127.0.0.1:0 }\n`);
  const r = await tessera(['proxy', '--config', join(dir, 'taken.yaml')], { timeoutMs: 20_000 });
  holder.close();
  expect(r.code).toBe(1);
  // The primary binds every port before it attests (audit 52a F3); a reuseport holder fails it too: workers-port-held.
  expect(r.stderr).toContain(`TESSERA_ERR_PROXY_LISTEN_FAILED: a listener port is already in use: inbound "app" (listen 127.0.0.1:${port}) listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
  expect(r.stderr).not.toContain('proxy worker');
}, 30_000);
