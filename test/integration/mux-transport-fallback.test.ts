// The multiplexed transport meeting peers without it, and draining under load, with real `tessera proxy`
// processes: an outbound sidecar with the transport on reaches an inbound sidecar with it off, and a plain Node mTLS
// HTTP/1.1 server that is not Tessera (HTTP/1.1 per exchange, the fallback counted); one with it off reaches an
// inbound sidecar with it on. Then the inbound sidecar is sent SIGTERM while requests flow through a multiplexed
// session: no request that reached it is lost (every request its app received was answered to its client), the
// requests in flight at the signal all complete, it exits before the drain deadline, and what fails afterwards is
// the outbound sidecar's own answer for an upstream that is gone, never a reset or truncated exchange.
import { writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MeshApp, call, proxyMetric, jsonLines, runLoad, startMeshApp } from '../helpers/mux-mesh.js';
import { type ProxyProcess, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const TD = 'example.org';
const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestCa;
let app: MeshApp;
let nodeServer: https.Server;
/** api with the transport on (drained at the end), api with it off, web with it on, web with it off. */
let apiOn: ProxyProcess;
let apiOff: ProxyProcess;
let webOn: ProxyProcess;
let webOff: ProxyProcess;

const metric = proxyMetric;
const files = (name: string) => `identity:\n  files: { certFile: ${name}/svid.pem, keyFile: ${name}/key.pem, bundleFile: ${name}/bundle.pem }\nadmin: { listen: 127.0.0.1:0 }\n`;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  ca = await TestCa.create({ trustDomain: TD });
  app = await startMeshApp();
  await writeSvidFiles(ca, API, join(dir, 'api'));
  await writeSvidFiles(ca, WEB, join(dir, 'web'));
  // An mTLS HTTP/1.1 server that is not Tessera: it requires a client certificate of the trust domain and answers
  // with the SPIFFE ID it saw and the ALPN it agreed.
  const apiSvid = await ca.mintSvid(API);
  nodeServer = https.createServer({ cert: apiSvid.chainPem, key: apiSvid.keyPem, ca: ca.bundlePem(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ peer: socket.getPeerCertificate().subjectaltname, alpn: socket.alpnProtocol, path: req.url }));
  });
  await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
  const inbound = `inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${app.port}, protocol: http }\nauthorization: { defaultAction: allow }\n`;
  await writeFile(join(dir, 'api-on.yaml'), `${files('api')}${inbound}telemetry: { accessLog: stdout }\nlimits: { drainTimeout: 10s }\n`);
  await writeFile(join(dir, 'api-off.yaml'), `${files('api')}${inbound}telemetry: { accessLog: off }\ntransport: { multiplex: false }\n`);
  [apiOn, apiOff] = await Promise.all([startProxyProcess(join(dir, 'api-on.yaml')), startProxyProcess(join(dir, 'api-off.yaml'))]);
  const to = (name: string, port: number) => `  - { name: ${name}, listen: 127.0.0.1:0, upstream: 127.0.0.1:${port}, spiffeId: ${API} }\n`;
  await writeFile(
    join(dir, 'web-on.yaml'),
    `${files('web')}outbound:\n${to('on', apiOn.ports.get('inbound/app')!)}${to('off', apiOff.ports.get('inbound/app')!)}${to('node', (nodeServer.address() as AddressInfo).port)}telemetry: { accessLog: stdout }\n`,
  );
  await writeFile(join(dir, 'web-off.yaml'), `${files('web')}outbound:\n${to('on', apiOn.ports.get('inbound/app')!)}telemetry: { accessLog: off }\ntransport: { multiplex: false }\n`);
  [webOn, webOff] = await Promise.all([startProxyProcess(join(dir, 'web-on.yaml')), startProxyProcess(join(dir, 'web-off.yaml'))]);
}, 60_000);

afterAll(async () => {
  await Promise.all([webOn?.stop(), webOff?.stop(), apiOn?.stop(), apiOff?.stop()]);
  nodeServer?.closeAllConnections();
  await new Promise<void>((r) => (nodeServer ? nodeServer.close(() => r()) : r()));
  await app?.close();
  await cleanup?.();
});

/** `n` requests over `clients` keep-alive connections; all answers. */
async function burst(port: number, path: string, n: number, clients: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  try {
    return await Promise.all(Array.from({ length: n }, (_, i) => call(port, `${path}${i}`, { agent })));
  } finally {
    agent.destroy();
  }
}

describe('peers without the transport', () => {
  test('transport on → inbound sidecar with it off: HTTP/1.1 per exchange, the fallback counted once', async () => {
    const answers = await burst(webOn.ports.get('outbound/off')!, '/v1/fallback/', 40, 8);
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    for (const a of answers) expect(String((JSON.parse(a.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'])).toContain(`URI=${WEB}`);
    expect(await metric(webOn, 'tessera_mux_fallbacks_total', { direction: 'outbound' })).toBe(1);
    expect(await metric(apiOff, 'tessera_mux_streams_opened_total')).toBe(0);
    expect(await metric(apiOff, 'tessera_mux_sessions_active')).toBe(0);
    expect(await metric(webOn, 'tessera_mux_sessions_active', { direction: 'outbound' })).toBe(0);
    // Keep-alive connections as before the transport: up to one per exchange in flight, fewer than the requests.
    const opened = await metric(webOn, 'tessera_upstream_connections_opened_total', { direction: 'outbound' });
    expect(opened).toBeGreaterThanOrEqual(2);
    expect(opened).toBeLessThanOrEqual(9);
  });

  test('transport off → inbound sidecar with it on: HTTP/1.1 per exchange, no session on either side', async () => {
    const answers = await burst(webOff.ports.get('outbound/on')!, '/v1/plain/', 40, 8);
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    for (const a of answers) expect(String((JSON.parse(a.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'])).toContain(`URI=${WEB}`);
    expect(await metric(apiOn, 'tessera_mux_sessions_active', { direction: 'inbound' })).toBe(0);
    expect(await metric(apiOn, 'tessera_mux_streams_opened_total')).toBe(0);
    expect(await metric(webOff, 'tessera_mux_streams_opened_total')).toBe(0);
    expect(await metric(webOff, 'tessera_mux_fallbacks_total')).toBe(0);
    expect(await metric(webOff, 'tessera_upstream_connections_opened_total', { direction: 'outbound' })).toBeGreaterThanOrEqual(1);
  });

  test('transport on → an mTLS HTTP/1.1 server that is not Tessera: it sees web’s SVID, over HTTP/1.1', async () => {
    const before = await metric(webOn, 'tessera_mux_fallbacks_total', { direction: 'outbound' });
    const answers = await burst(webOn.ports.get('outbound/node')!, '/node/', 20, 4);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    for (const a of answers) {
      const j = JSON.parse(a.text) as { peer: string; alpn: string | false };
      expect(j.peer).toBe(`URI:${WEB}`);
      expect(j.alpn).not.toBe('tessera-mux/1');
    }
    expect(await metric(webOn, 'tessera_mux_fallbacks_total', { direction: 'outbound' })).toBe(before + 1);
  });

  test('transport on both ways: the same outbound sidecar multiplexes to the inbound sidecar that offers it', async () => {
    const answers = await burst(webOn.ports.get('outbound/on')!, '/v1/mux/', 40, 8);
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    expect(await metric(webOn, 'tessera_mux_sessions_active', { direction: 'outbound' })).toBe(1);
    expect(await metric(apiOn, 'tessera_mux_sessions_active', { direction: 'inbound' })).toBe(1);
  });
});

describe('drain', () => {
  test('SIGTERM to the inbound sidecar under load: every request that reached it is answered; in-flight ones complete', async () => {
    const port = webOn.ports.get('outbound/on')!;
    const load = runLoad(port, '/v1/drain?ms=150', 24);
    let inFlightAtSignal: string[] = [];
    let sigtermAt = 0;
    let exitCode: number | null = null;
    let outcomes: Awaited<ReturnType<typeof load.stop>> = [];
    try {
      await until('load running', () => load.outcomes.length >= 100, 20_000, 20);
      await until('requests in flight at the app', () => app.received.size - app.answered.size >= 10, 5_000, 5);
      inFlightAtSignal = [...app.received].filter((id) => id.includes('-') && !app.answered.has(id));
      sigtermAt = Date.now();
      exitCode = await apiOn.stop(15_000);
      const exitedAt = Date.now();
      // Keep the load on a moment after the exit: those requests find no upstream.
      await until('requests after the exit', () => load.outcomes.some((o) => o.startedMs > exitedAt + 200), 5_000, 20);
    } finally {
      outcomes = await load.stop();
    }
    expect(exitCode).toBe(0);
    const byId = new Map(outcomes.map((o) => [o.id, o]));
    // Meaningful: requests were inside the sidecar when the signal came, and the load went on after it.
    expect(inFlightAtSignal.length).toBeGreaterThanOrEqual(10);
    expect(outcomes.some((o) => o.startedMs > sigtermAt && o.status !== 200)).toBe(true);
    // 1. Those in flight at the signal completed (the drain served them).
    expect(inFlightAtSignal.map((id) => [id, byId.get(id)?.status])).toEqual(inFlightAtSignal.map((id) => [id, 200]));
    // 2. Nothing that reached the drained sidecar's app was lost: its client got the 200.
    const lost = [...app.received].filter((id) => id.includes('-') && byId.has(id) && byId.get(id)!.status !== 200);
    expect(lost).toEqual([]);
    // 3. Every failure is the outbound sidecar's own answer (a gateway error) for a request that never reached the
    // app: no reset, no truncated exchange.
    const failures = outcomes.filter((o) => o.status !== 200);
    expect(failures.filter((o) => o.status !== 502 && o.status !== 503)).toEqual([]);
    expect(failures.filter((o) => app.received.has(o.id))).toEqual([]);
    // 4. Nothing the outbound sidecar had put on the draining session failed: each failure is, in its access log, a
    // request it could not lease an upstream for (`upstream_unavailable`: the session had said GOAWAY and the dial
    // after it was refused), never one reset or refused on the session (`upstream_reset`). The client's start time
    // cannot tell this: a request it started a moment before the signal may reach the outbound sidecar after the
    // inbound one has sent GOAWAY (seen on a loaded CI machine), and then there is no other endpoint to send it to.
    // (The access log is written in batches: wait for its lines.)
    const outboundFailed = () => jsonLines(webOn.stdout()).filter((l) => l['log'] === 'access' && l['path'] === '/v1/drain' && l['status'] !== 200);
    await until('the outbound access log has every failure', () => outboundFailed().length >= failures.length, 5_000, 20);
    const outboundFailures = outboundFailed();
    expect(outboundFailures.length).toBe(failures.length);
    expect(outboundFailures.filter((l) => l['error'] !== 'upstream_unavailable')).toEqual([]);
    // The inbound sidecar's access log has one line per request its app answered.
    const logged = jsonLines(apiOn.stdout()).filter((l) => l['path'] === '/v1/drain' && l['status'] === 200);
    expect(logged.length).toBe([...app.answered].filter((id) => id.includes('-') && byId.has(id)).length);
  }, 60_000);
});
