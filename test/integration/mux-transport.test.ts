// The multiplexed proxy-to-proxy transport (tessera-mux/1) between two real `tessera proxy` processes with the
// default config: client → web's outbound sidecar → api's inbound sidecar → app. 200 concurrent keep-alive
// requests from 50 client connections ride ONE mTLS connection, each with its XFCC and inbound access-log line;
// 20 MiB bodies both ways arrive intact; a client that stops reading a large download holds back only its own
// stream; SVID rotation of either side under load fails no request, and the dialer's rotation moves new streams to
// a new session while the old one drains and closes (even under steady load, when the pool has idle streams).
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MeshApp, call, proxyMetric, downloadSha256, jsonLines, runLoad, sha256, startMeshApp } from '../helpers/mux-mesh.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const MiB = 1024 * 1024;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: MeshApp;
let api: ProxyProcess;
let web: ProxyProcess;
let out: number;

const metric = proxyMetric;
const certs = async (p: ProxyProcess) => (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as Promise<{ serial: string; servedSerial: string }>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = await startMeshApp();
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  await mkdir(join(dir, 'policies'));
  await writeFile(
    join(dir, 'policies', 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n      to: { methods: [GET, POST], paths: ["/v1/**"] }\n`,
  );
  await writeFile(
    join(dir, 'api.yaml'),
    `identity:\n  files: { certFile: api/svid.pem, keyFile: api/key.pem, bundleFile: api/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app.port}, protocol: http }\nauthorization: { policiesDir: policies }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: stdout }\n`,
  );
  api = await startProxyProcess(join(dir, 'api.yaml'));
  await writeFile(
    join(dir, 'web.yaml'),
    `identity:\n  files: { certFile: web/svid.pem, keyFile: web/key.pem, bundleFile: web/bundle.pem }\noutbound:\n  - { name: api, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/app')}, spiffeId: ${API} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
  );
  web = await startProxyProcess(join(dir, 'web.yaml'));
  out = web.ports.get('outbound/api')!;
}, 60_000);

afterAll(async () => {
  await web?.stop();
  await api?.stop();
  await app?.close();
  await cleanup?.();
});

describe('one multiplexed mTLS connection between the sidecars', () => {
  test('200 concurrent keep-alive requests from 50 client connections: all answered, over one mTLS connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const sockets = new Set<unknown>();
    agent.on('free', (s) => sockets.add(s));
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => call(out, `/v1/c/${i}?id=c${i}`, { agent })));
      expect(answers.map((a) => a.status)).toEqual(Array(200).fill(200));
      for (const a of answers) {
        const echo = JSON.parse(a.text) as { headers: Record<string, string> };
        expect(echo.headers['x-forwarded-client-cert']).toMatch(new RegExp(`^By=${API};Hash=[0-9a-f]{64};URI=${WEB}$`));
      }
    } finally {
      agent.destroy();
    }
    expect(sockets.size).toBe(50);
    // One TLS connection from web's sidecar to api's: one session each side, the streams counted alike.
    expect(await metric(web, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(1);
    expect(await metric(web, 'tessera_mux_sessions_active', { direction: 'outbound' })).toBe(1);
    expect(await metric(api, 'tessera_mux_sessions_active', { direction: 'inbound' })).toBe(1);
    expect(await metric(web, 'tessera_mux_fallbacks_total')).toBe(0);
    const streams = await metric(web, 'tessera_mux_streams_opened_total', { direction: 'outbound' });
    expect(streams).toBeGreaterThanOrEqual(1);
    expect(streams).toBeLessThanOrEqual(50); // a stream per exchange in flight at once, reused like a keep-alive connection
    expect(await metric(api, 'tessera_mux_streams_opened_total', { direction: 'inbound' })).toBe(streams);
    // The inbound access log: one line per request, with the caller's SPIFFE ID.
    await until('200 inbound access-log lines', () => jsonLines(api.stdout()).filter((r) => String(r['path']).startsWith('/v1/c/')).length === 200);
    const lines = jsonLines(api.stdout()).filter((r) => String(r['path']).startsWith('/v1/c/'));
    for (const l of lines) expect(l).toMatchObject({ direction: 'inbound', protocol: 'http', peer: WEB, decision: 'allow', status: 200, method: 'GET' });
    expect(new Set(lines.map((l) => l['requestId'])).size).toBe(200);
  });

  test('per-request policy still applies on a stream: a path outside the policy is denied (403) and logged', async () => {
    const r = await call(out, '/forbidden/x1?id=deny1');
    expect(r.status).toBe(403);
    expect(app.received.has('deny1')).toBe(false);
    // The access log keeps the path without its query.
    await until('the denial logged', () => jsonLines(api.stdout()).some((l) => l['path'] === '/forbidden/x1'));
    expect(jsonLines(api.stdout()).find((l) => l['path'] === '/forbidden/x1')).toMatchObject({ peer: WEB, decision: 'deny', status: 403 });
    // And the session goes on serving.
    expect((await call(out, '/v1/after-deny')).status).toBe(200);
  });
});

describe('bodies and back-pressure', () => {
  test('20 MiB POST echoed back and a 20 MiB download, at once: every byte intact', async () => {
    const body = randomBytes(20 * MiB);
    const [echo, down] = await Promise.all([call(out, '/v1/echo?id=echo1', { method: 'POST', body, keepText: false }), call(out, `/v1/download?bytes=${20 * MiB}&id=down1`, { keepText: false })]);
    expect([echo.status, echo.bytes, echo.sha256]).toEqual([200, body.length, sha256(body)]);
    expect([down.status, down.bytes, down.sha256]).toEqual([200, 20 * MiB, downloadSha256(20 * MiB)]);
  }, 30_000);

  test('a client that stops reading a 64 MiB download holds back only its own stream; others keep completing', async () => {
    const TOTAL = 64 * MiB;
    let got = 0;
    let res: IncomingMessage | undefined;
    const h = createHash('sha256');
    const done = new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: out, path: `/v1/download?bytes=${TOTAL}&id=slow`, agent: false }, (r) => {
        res = r;
        r.on('data', (d: Buffer) => {
          got += d.length;
          h.update(d);
          if (got >= MiB && got - d.length < MiB) r.pause(); // the client stops reading after 1 MiB
        });
        r.on('end', resolve);
        r.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    await until('the slow client paused', () => res?.isPaused() === true);
    // Other clients on other connections are served meanwhile, over the same session.
    const agent = new Agent({ keepAlive: true, maxSockets: 10 });
    try {
      const others = await Promise.all(Array.from({ length: 100 }, (_, i) => call(out, `/v1/o/${i}?id=o${i}&ms=${i % 3}`, { agent })));
      expect(others.map((a) => a.status)).toEqual(Array(100).fill(200));
      const small = await call(out, `/v1/download?bytes=${4 * MiB}&id=other-down`, { agent, keepText: false });
      expect(small.sha256).toBe(downloadSha256(4 * MiB));
    } finally {
      agent.destroy();
    }
    // The app is held back too: what it could write is bounded by buffers and one stream window, not the whole body.
    let last = -1;
    await until('the app stopped writing', async () => {
      const now = app.downloadWritten.get('slow') ?? 0;
      const still = now === last;
      last = now;
      return still;
    }, 10_000, 300);
    expect(app.downloadWritten.get('slow')).toBeLessThan(TOTAL / 2);
    expect(got).toBeLessThan(TOTAL);
    expect(await metric(web, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBe(1);
    res!.resume();
    await done;
    expect(got).toBe(TOTAL);
    expect(h.digest('hex')).toBe(downloadSha256(TOTAL));
  }, 45_000);
});

describe('rotation', () => {
  test('SVID rotation of the dialer, then of the server, under load: no request fails', async () => {
    const load = runLoad(out, '/v1/rot?x=1', 16);
    const atLeast = (n: number) => until(`${n} requests done`, () => load.outcomes.length >= n, 20_000, 20);
    try {
      await atLeast(100);
      const next = await writeSvidFiles(ca, WEB, join(dir, 'web'));
      await until("web's new SVID in force", async () => (await certs(web)).serial === next.serial);
      await atLeast(load.outcomes.length + 200);
      const apiNext = await writeSvidFiles(ca, API, join(dir, 'api'));
      await until("api's new SVID served", async () => (await certs(api)).servedSerial === apiNext.serial);
      await atLeast(load.outcomes.length + 200);
    } finally {
      await load.stop();
    }
    expect(load.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(load.outcomes.length).toBeGreaterThan(500);
  }, 60_000);

  test("after the dialer's SVID rotates under steady load, new streams take a new session; the old one drains and closes", async () => {
    const opened0 = await metric(web, 'tessera_upstream_connections_opened_total', { direction: 'outbound' });
    const ended0 = await metric(web, 'tessera_mux_sessions_ended_total', { direction: 'outbound', reason: 'closed' });
    const load = runLoad(out, '/v1/rot2?x=1', 8);
    try {
      await until('load running', () => load.outcomes.length >= 50, 20_000, 20);
      const next = await writeSvidFiles(ca, WEB, join(dir, 'web'));
      await until("web's new SVID in force", async () => (await certs(web)).serial === next.serial);
      // docs/transport.md: new streams go to a session dialed with the new SVID; the old session's idle streams are
      // not reused (dropped at the next lease or sweep), so it drains and closes even while requests keep coming.
      await until('a new session dialed', async () => (await metric(web, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })) === opened0 + 1, 10_000);
      await until('the old session closed', async () => (await metric(web, 'tessera_mux_sessions_ended_total', { direction: 'outbound', reason: 'closed' })) === ended0 + 1, 10_000);
    } finally {
      await load.stop();
    }
    expect(load.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(await metric(web, 'tessera_mux_sessions_active', { direction: 'outbound' })).toBe(1);
    await until('the inbound side closed the old session too', async () => (await metric(api, 'tessera_mux_sessions_active', { direction: 'inbound' })) === 1);
  }, 60_000);
});
