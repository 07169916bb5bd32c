// Audit 57a F1: anonymous HTTP/2 clients of an edge on an `http` route, many streams each whose request bodies never
// come. Their requests (re-made as HTTP/1.1, edge-h2-to-h1.ts) made the edge open one upstream connection per
// stream, past limits.upstreamPoolSize (366 mTLS connections with a bound of 8, until EMFILE: a bystander reset,
// the admin listener dead). Now they go through the route's pool, the one its HTTP/1.1 clients use: at most
// upstreamPoolSize exchanges in flight, the rest wait in its queue (bounded by limits.maxConnections) and past that
// get 503 at once; a client that leaves gives its place up. On each transport of an `http` route: the multiplexed
// session to a Tessera sidecar, keep-alive mTLS connections to a sidecar without it, plaintext to an app. Real edge
// and sidecar processes, real apps, node:http2 clients, curl as the bystander.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { edgeConfigYaml } from '../helpers/edge-config.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const EDGE = `spiffe://${TD}/ns/edge/sa/gateway`;
/** limits.upstreamPoolSize and limits.maxConnections (the pool's queue bound) of the edge. */
const POOL = 4;
const QUEUE = 24;
/** Attacking HTTP/2 connections and held streams on each: more than the pool and its queue together. */
const CONNS = 3;
const STREAMS = 20;

let dir: string;
let cleanup: () => Promise<void>;
let web: TestCa;
const procs: ProxyProcess[] = [];
let edge: ProxyProcess;
let edgePort: number;

/** An app that counts the connections it gets and answers every request it reads whole. */
interface App {
  readonly server: Server;
  port: number;
  connections: number;
}
const apps = new Map<string, App>();

async function startApp(name: string): Promise<App> {
  const app: App = { server: createServer(), port: 0, connections: 0 };
  app.server.on('connection', () => app.connections++);
  app.server.on('request', (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', r));
  app.port = (app.server.address() as AddressInfo).port;
  apps.set(name, app);
  return app;
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '--cacert', join(dir, 'web-ca.pem'), '-o', '/dev/null', '-w', '%{http_code}', ...args], (_e, stdout, stderr) => resolve(stdout || stderr));
  });
}

function url(host: string, path: string): string[] {
  return ['--resolve', `${host}:${edgePort}:127.0.0.1`, `https://${host}:${edgePort}${path}`];
}

function edgeSession(): http2.ClientHttp2Session {
  const s = http2.connect(`https://127.0.0.1:${edgePort}`, { ca: web.bundlePem(), servername: 'edge.test', checkServerIdentity: () => undefined });
  s.on('error', () => undefined);
  return s;
}

/** The status a stream was answered with, or undefined (never answered). */
function get(s: http2.ClientHttp2Session, host: string, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const r = s.request({ ':path': path, ':authority': host });
    r.on('response', (h) => resolve(Number(h[':status'])));
    r.on('error', () => resolve(undefined));
    r.on('close', () => resolve(undefined));
    r.resume();
    r.end();
  });
}

/**
 * What the edge holds toward its upstreams: mTLS connections it opened (to the sidecars), streams of its multiplexed
 * sessions, and the plaintext connections an app accepted.
 */
async function upstreamLegs(app: App): Promise<{ connections: number; streams: number; appConnections: number }> {
  const text = await metricsText(edge.admin);
  return { connections: sumSeries(text, 'tessera_upstream_connections_opened_total', { direction: 'edge' }), streams: sumSeries(text, 'tessera_mux_streams_opened_total'), appConnections: app.connections };
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  const mesh = await TestCa.create({ trustDomain: TD });
  web = await TestCa.create({ trustDomain: 'web.test', rootName: 'CN=Public Web CA, O=Test' });
  await writeFile(join(dir, 'web-ca.pem'), web.bundlePem());
  const cert = await web.mintSvid('spiffe://web.test/edge', { dnsSans: ['edge.test', 'mux.test', 'tls.test', 'plain.test', 'bystander.test'] });
  await writeFile(join(dir, 'edge.pem'), cert.chainPem);
  await writeFile(join(dir, 'edge.key'), cert.keyPem, { mode: 0o600 });
  await mkdir(join(dir, 'policies'));
  // Two sidecars: one with the multiplexed transport (the default), one without (keep-alive mTLS connections).
  const sidecars: Record<string, { id: string; port: number }> = {};
  for (const [name, multiplex] of [['mux', true], ['tls', false]] as const) {
    const id = `spiffe://${TD}/ns/default/sa/${name}`;
    await writeFile(join(dir, 'policies', `${name}.yaml`), `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}-allow-edge }\nspec:\n  selector: ${id}\n  action: ALLOW\n  rules:\n    - from: ["${EDGE}"]\n`);
    const app = await startApp(name);
    await writeSvidFiles(mesh, id, join(dir, name));
    await writeFile(
      join(dir, `${name}.yaml`),
      `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app.port} }\nauthorization: { policiesDir: policies }\ntransport: { multiplex: ${multiplex} }\nadmin: { listen: 127.0.0.1:0 }\ntelemetry: { accessLog: off }\n`,
    );
    const p = await startProxyProcess(join(dir, `${name}.yaml`));
    procs.push(p);
    sidecars[name] = { id, port: p.ports.get('inbound/app')! };
  }
  const plain = await startApp('plain');
  const bystander = await startApp('bystander');
  await writeSvidFiles(mesh, EDGE, join(dir, 'edge'));
  await writeFile(
    join(dir, 'edge.yaml'),
    edgeConfigYaml({
      routes: [
        `{ host: mux.test, pathPrefix: /, upstream: 127.0.0.1:${sidecars['mux']!.port}, spiffeId: ${sidecars['mux']!.id} }`,
        `{ host: tls.test, pathPrefix: /, upstream: 127.0.0.1:${sidecars['tls']!.port}, spiffeId: ${sidecars['tls']!.id} }`,
        `{ host: plain.test, pathPrefix: /, upstream: 127.0.0.1:${plain.port}, unsafePlaintext: true }`,
        `{ host: bystander.test, pathPrefix: /, upstream: 127.0.0.1:${bystander.port}, unsafePlaintext: true }`,
      ],
      extra: [`limits: { upstreamPoolSize: ${POOL}, maxConnections: ${QUEUE} }`],
    }),
  );
  edge = await startProxyProcess(join(dir, 'edge.yaml'));
  procs.push(edge);
  edgePort = edge.ports.get('edge/public')!;
}, 60_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  for (const a of apps.values()) a.server.close();
  await cleanup?.();
});

for (const [route, what] of [
  ['mux', 'the multiplexed session to a sidecar'],
  ['tls', 'keep-alive mTLS connections to a sidecar without the multiplexed transport'],
  ['plain', 'plaintext connections to an app'],
] as const) {
  test(`HTTP/2 streams whose bodies never come, over ${what}: at most upstreamPoolSize exchanges, the rest queued or refused; bystanders and the admin listener served`, async () => {
    const app = apps.get(route)!;
    const host = `${route}.test`;
    const before = await upstreamLegs(app);
    const grown = async () => {
      const now = await upstreamLegs(app);
      return { connections: now.connections - before.connections, streams: now.streams - before.streams, appConnections: now.appConnections - before.appConnections };
    };
    const sessions = Array.from({ length: CONNS }, edgeSession);
    const answered: (number | undefined)[] = [];
    for (const s of sessions) {
      for (let i = 0; i < STREAMS; i++) {
        const r = s.request({ ':method': 'POST', ':path': '/hold', ':authority': host }, { endStream: false });
        // Answered (refused): the client's side of the stream is closed too, freeing its place on the connection.
        r.on('response', (h) => {
          answered.push(Number(h[':status']));
          r.close();
        });
        r.on('error', () => undefined);
        r.resume();
      }
    }
    // A stream after them on each connection, to another route: once it is answered, the edge has taken every
    // stream before it on that connection (streams are handled in order) and answered those it refused at once.
    expect(await Promise.all(sessions.map((s) => get(s, 'bystander.test', '/after')))).toEqual(sessions.map(() => 200));
    // The first upstreamPoolSize exchanges reach the upstream (a connection or a stream each), whatever the transport.
    await until(`${POOL} exchanges toward the upstream`, async () => Object.values(await grown()).reduce((a, n) => a + n, 0) >= POOL, 10_000, 50);
    await new Promise((r) => setTimeout(r, 500)); // a connection opened past the bound would be counted by now
    const legs = await grown();
    // Before: one upstream connection per stream (60 here), and none of them answered.
    expect(legs.connections, 'mTLS connections the edge opened').toBeLessThanOrEqual(POOL);
    expect(legs.streams, 'multiplexed streams the edge opened').toBeLessThanOrEqual(POOL);
    expect(legs.appConnections, 'connections the app accepted').toBeLessThanOrEqual(POOL);
    // What did not fit in the pool or its queue was refused at once (503, as to an HTTP/1.1 client).
    expect(answered.filter((s) => s === 503)).toHaveLength(CONNS * STREAMS - POOL - QUEUE);
    expect(answered.filter((s) => s !== 503)).toEqual([]);
    // HTTP/1.1 clients of the route share that bound: with the queue full, one is told so at once.
    expect(await curl(['--http1.1', ...url(host, '/ok')])).toBe('503');
    // Bystanders on other routes, over either protocol, and the admin listener are served.
    expect(await curl(['--http2', ...url('bystander.test', '/ok')])).toBe('200');
    expect(await curl(['--http1.1', ...url('bystander.test', '/ok')])).toBe('200');
    expect((await fetch(`http://127.0.0.1:${edge.admin}/ready`)).status).toBe(200);
    // The clients leave: their queued requests give up their places and their exchanges end, so the route serves again.
    for (const s of sessions) s.destroy();
    await until('the route serves again', async () => (await curl(['--http2', ...url(host, '/ok')])) === '200', 10_000, 100);
    expect(await curl(['--http1.1', ...url(host, '/ok')])).toBe('200');
  });

  test(`a burst of whole HTTP/2 requests past upstreamPoolSize, over ${what}: each waits its turn and is served over the pooled connections`, async () => {
    const app = apps.get(route)!;
    const host = `${route}.test`;
    const before = await upstreamLegs(app);
    const s = edgeSession();
    const bodies = await Promise.all(
      Array.from(
        { length: 3 * POOL },
        (_, i) =>
          new Promise<string>((resolve) => {
            const r = s.request({ ':method': 'POST', ':path': `/burst/${i}`, ':authority': host });
            let got = '';
            r.setEncoding('utf8');
            r.on('response', (h) => {
              got += `${h[':status']} `;
            });
            r.on('data', (c: string) => {
              got += c;
            });
            r.on('end', () => resolve(got));
            r.on('error', (e) => resolve(e.message));
            r.end('x'.repeat(1000));
          }),
      ),
    );
    s.close();
    expect(bodies).toEqual(bodies.map(() => '200 ok'));
    const now = await upstreamLegs(app);
    expect(now.connections - before.connections).toBeLessThanOrEqual(POOL);
    expect(now.appConnections - before.appConnections).toBeLessThanOrEqual(POOL);
  });
}
