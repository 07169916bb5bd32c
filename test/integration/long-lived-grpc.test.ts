// Long-lived gRPC streams (grpc-js client and server) through a real sidecar pair: server, client and bidi streams
// kept open across SVID rotations and a CA rotation with none broken, while each new call presents the caller's
// current SVID; stream timeouts (a stream past requestTimeout and quieter than idleTimeout is unharmed, a silent
// one is ended by streamIdleTimeout, a listener's total timeout cuts one); cancel and deadlines reach the app.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { callEnd, type OpenStream, openChat, openUpload, openWatch, presentedHash, StreamsApp, type StreamsClient, StreamTally, streamsClient, watchLeafHashes } from '../../bench/hold/grpc-streams.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy, startProxyProcess, writeSvidFiles } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const allowWeb = `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-web }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: [${WEB}]\n`;

interface Certs {
  serial: string;
  bundles: { fingerprints: string[] }[];
}
const certs = async (p: ProxyProcess): Promise<Certs> => (await fetch(`http://127.0.0.1:${p.admin}/certs`)).json() as never;

let dir: string;
let cleanup: () => Promise<void>;
const apps: StreamsApp[] = [];
const proxies: ProxyProcess[] = [];
const clients: StreamsClient[] = [];
let cp: RunningControlPlane | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of proxies.reverse()) await p.stop();
  await cp?.stop();
  for (const a of apps) a.close();
  await cleanup?.();
});

// The two groups run side by side (their own processes, files and logs; each group's tests one after another): both
// spend most of their time waiting on rotations and stream timers.
describe('gRPC streams across identity rotations (control plane, SVID TTL 9 s)', { concurrent: true }, () => {
  let api: ProxyProcess;
  let web: ProxyProcess;
  let client: StreamsClient;
  /** serial → sha256 of web's SVID leaf, as its Workload API hands them out. */
  const webLeaves = new Map<string, string>();
  let stopLeafWatch: (() => void) | undefined;
  afterAll(() => stopLeafWatch?.());

  beforeAll(async () => {
    const app = new StreamsApp();
    apps.push(app);
    const appPort = await app.start();
    const cpDir = join(dir, 'cp');
    const cfg = await writeControlPlaneConfig(cpDir, 'svid: { ttl: 9s, maxTtl: 9s, backdate: 3s }');
    await writeFile(join(cpDir, 'policies', 'api.yaml'), allowWeb);
    cp = await startControlPlaneProcess(cpDir, cfg);
    api = await startAttestedProxy(cp, dir, 'api', API, `inbound:\n  - { name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: grpc }\n`);
    proxies.push(api);
    web = await startAttestedProxy(cp, dir, 'web', WEB, `outbound:\n  - { name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/grpc')}, spiffeId: ${API}, protocol: grpc }\nworkloadApi: { socket: ${join(dir, 'web.sock')} }\n`);
    proxies.push(web);
    client = streamsClient(`127.0.0.1:${web.ports.get('outbound/grpc')}`);
    clients.push(client);
    stopLeafWatch = watchLeafHashes(join(dir, 'web.sock'), webLeaves);
  }, 90_000);

  /** A new call arrives with the SVID web holds now (checked when no rotation happened during the call). */
  async function expectCurrentSvidPresented(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = (await certs(web)).serial;
      await until(`web's Workload API has serial ${before}`, () => webLeaves.has(before), 10_000);
      const hash = await presentedHash(client);
      if ((await certs(web)).serial !== before) continue; // rotated meanwhile: ask again
      expect(hash, `a call made while web holds SVID ${before}`).toBe(webLeaves.get(before));
      return;
    }
    throw new Error('web rotated during every attempt');
  }

  test.sequential('server, client and bidi streams stay open across ≥3 SVID rotations and a CA rotation, while new calls present the current SVID', async () => {
    const started = Date.now();
    const tally = new StreamTally();
    const streams: OpenStream[] = [openChat(client, tally, 200), openWatch(client, tally, 300), openUpload(client, tally, 250)];
    await until('every stream carried a message', () => streams.every((s) => s.messages() > 0), 10_000);
    await expectCurrentSvidPresented();
    const webSerials = new Set([(await certs(web)).serial]);
    const apiSerials = new Set([(await certs(api)).serial]);
    const track = async () => {
      const [w, a] = [(await certs(web)).serial, (await certs(api)).serial];
      apiSerials.add(a);
      if (webSerials.has(w)) return false;
      webSerials.add(w);
      return true;
    };

    // 1. Three SVID rotations (renewal ~3 s after issuance): after each, a new call shows the new SVID.
    while (webSerials.size < 4) {
      await until('web rotated its SVID', track, 15_000, 200);
      await expectCurrentSvidPresented();
    }
    expect(tally.broken).toEqual([]);

    // 2. CA rotation: prepare (bundles gain the new root), activate (SVIDs from the new CA), retire (old root gone).
    const roots = async (p: ProxyProcess) => (await certs(p)).bundles[0]!.fingerprints.length;
    expect((await tessera(['ca', 'prepare', '--data-dir', cp!.dataDir])).code).toBe(0);
    await until('both proxies trust both roots', async () => (await roots(api)) === 2 && (await roots(web)) === 2, 15_000);
    await expectCurrentSvidPresented();
    expect((await tessera(['ca', 'activate', '--data-dir', cp!.dataDir])).code).toBe(0);
    const [webAtActivate, apiAtActivate] = [webSerials.size, apiSerials.size];
    const renewedTwice = async () => {
      await track();
      return webSerials.size >= webAtActivate + 2 && apiSerials.size >= apiAtActivate + 2;
    };
    await until('both proxies renewed twice from the new authority', renewedTwice, 20_000, 200);
    await expectCurrentSvidPresented();
    // Retired by the command once the old authority's SVIDs have expired: refused while they live, and the wait
    // between reads the control plane's count of them (GET /v1/ca), not a CLI started every half second.
    const retired = await tessera(['ca', 'retire', '--data-dir', cp!.dataDir]);
    if (retired.code !== 0) {
      expect(retired.stderr).toContain('TESSERA_ERR_CA_AUTHORITY_IN_USE');
      const oldSvidsLive = async () => (await adminRequest<{ authorities: { state: string; liveSvids: number }[] }>(cp!.dataDir, 'GET', '/v1/ca')).authorities.some((a) => a.state === 'retired' && a.liveSvids > 0);
      await until("the old authority's SVIDs expired", async () => !(await oldSvidsLive()), 30_000, 250);
      // None live that the control plane knows of, and it knows them all here: the svid.maxTtl wait is not needed.
      const again = await tessera(['ca', 'retire', '--data-dir', cp!.dataDir, '--force']);
      expect(again.code, again.stderr).toBe(0);
    }
    await until('bundles back to one root', async () => (await roots(api)) === 1 && (await roots(web)) === 1, 15_000);
    await expectCurrentSvidPresented();

    // 3. The streams opened before all of this still carry messages, then end cleanly.
    const counts = streams.map((s) => s.messages());
    await until('every stream still carries messages', () => streams.every((s, i) => s.messages() > counts[i]!), 10_000);
    await Promise.all(streams.map((s) => s.finish()));
    await track();
    console.log(`long-lived gRPC: ${webSerials.size - 1} web and ${apiSerials.size - 1} api SVID rotations, 1 CA rotation, ${tally.opened} streams, ${tally.messages} messages, ${tally.broken.length} broken, ${Math.round((Date.now() - started) / 1000)} s`);
    expect(tally.broken).toEqual([]);
    expect(tally.completed).toBe(3);
    expect(webSerials.size).toBeGreaterThanOrEqual(6);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);
});

describe('gRPC stream timeouts (requestTimeout 1 s, idleTimeout 2 s, streamIdleTimeout 4 s; listener timeout 3 s on one)', { concurrent: true }, () => {
  let api: ProxyProcess;
  let web: ProxyProcess;
  let client: StreamsClient;
  let capped: StreamsClient;

  beforeAll(async () => {
    const app = new StreamsApp();
    apps.push(app);
    const appPort = await app.start();
    const ca = await TestCa.create({ trustDomain: TD });
    await writeSvidFiles(ca, API, join(dir, 'f-api'));
    await writeSvidFiles(ca, WEB, join(dir, 'f-web'));
    const limits = 'limits: { requestTimeout: 1s, idleTimeout: 2s, streamIdleTimeout: 4s, upstreamIdleTimeout: 1s }\ntelemetry: { accessLog: stdout }\nadmin: { listen: 127.0.0.1:0 }\n';
    await writeFile(join(dir, 'f-api.yaml'), `identity:\n  files: { certFile: f-api/svid.pem, keyFile: f-api/key.pem, bundleFile: f-api/bundle.pem }\ninbound:\n  - { name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${appPort}, protocol: grpc }\nauthorization: { defaultAction: allow }\n${limits}`);
    api = await startProxyProcess(join(dir, 'f-api.yaml'));
    proxies.push(api);
    const upstream = `upstream: 127.0.0.1:${api.ports.get('inbound/grpc')}, spiffeId: ${API}, protocol: grpc`;
    await writeFile(join(dir, 'f-web.yaml'), `identity:\n  files: { certFile: f-web/svid.pem, keyFile: f-web/key.pem, bundleFile: f-web/bundle.pem }\noutbound:\n  - { name: grpc, listen: 127.0.0.1:0, ${upstream} }\n  - { name: capped, listen: 127.0.0.1:0, ${upstream}, timeout: 3s }\n${limits}`);
    web = await startProxyProcess(join(dir, 'f-web.yaml'));
    proxies.push(web);
    client = streamsClient(`127.0.0.1:${web.ports.get('outbound/grpc')}`);
    capped = streamsClient(`127.0.0.1:${web.ports.get('outbound/capped')}`);
    clients.push(client, capped);
  }, 60_000);

  /** Runs one Watch call to its end: the notes, the final status and how long it took. */
  function watch(c: StreamsClient, req: { count: number; interval_ms: number; tag?: string }, opts: grpc.CallOptions = {}, cancelAfter?: number): Promise<{ notes: number; code: grpc.status; ms: number }> {
    const t0 = Date.now();
    return new Promise((resolve) => {
      const call = c.Watch(req, opts);
      let notes = 0;
      call.on('data', () => {
        if (++notes === cancelAfter) call.cancel();
      });
      call.on('status', (s: grpc.StatusObject) => resolve({ notes, code: s.code, ms: Date.now() - t0 }));
      call.on('error', () => undefined); // the status says it
    });
  }

  const accessLines = (p: ProxyProcess) =>
    p
      .stdout()
      .split('\n')
      .filter((l) => l.includes('"log":"access"'))
      .map((l) => JSON.parse(l) as { path?: string; status?: number; responseFlags?: string });

  test.sequential('a server stream runs past requestTimeout with pauses longer than idleTimeout and completes', async () => {
    const r = await watch(client, { count: 4, interval_ms: 2_500 });
    expect(r).toMatchObject({ notes: 4, code: grpc.status.OK });
    expect(r.ms).toBeGreaterThan(7_000);
  }, 30_000);

  test.sequential('a stream with no message either way for streamIdleTimeout is ended: CANCELLED to the client, cancel to the app, logged as stream_idle_timeout', async () => {
    const r = await watch(client, { count: 3, interval_ms: 9_000, tag: 'idle' });
    expect(r.notes).toBe(1);
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain(r.code);
    expect(r.ms).toBeGreaterThan(3_500);
    expect(r.ms).toBeLessThan(8_000);
    await until('the app saw the cancel', async () => (await callEnd(client, 'idle')).state === 'cancelled', 5_000);
    // Whichever sidecar's timer fires first cuts it (its line: stream_idle_timeout); the other logs who closed first.
    const cutLine = (p: ProxyProcess) => accessLines(p).find((l) => l.path === '/tessera.bench.v1.Streams/Watch' && l.responseFlags !== undefined && l.responseFlags !== 'total_timeout');
    await until('both sidecars logged how the stream ended', () => cutLine(web) !== undefined && cutLine(api) !== undefined, 5_000);
    const [w, a] = [cutLine(web)!, cutLine(api)!];
    expect([w.status, a.status]).toEqual([200, 200]);
    // (Both timers may fire before either hears of the other's reset: then both say stream_idle_timeout.)
    expect([w.responseFlags, a.responseFlags]).toContain('stream_idle_timeout');
    expect(['stream_idle_timeout', 'upstream_closed']).toContain(w.responseFlags);
    expect(['stream_idle_timeout', 'downstream_closed']).toContain(a.responseFlags);
  }, 30_000);

  test.sequential('a client cancel after a pause longer than idleTimeout reaches the app', async () => {
    const r = await watch(client, { count: 0, interval_ms: 2_500, tag: 'cancel' }, {}, 2);
    expect(r).toMatchObject({ notes: 2, code: grpc.status.CANCELLED });
    await until('the app saw the cancel', async () => (await callEnd(client, 'cancel')).state === 'cancelled', 3_000);
  }, 30_000);

  test.sequential("the client's deadline reaches the app (grpc-timeout) and ends the stream on both sides", async () => {
    const deadline = Date.now() + 6_000;
    const r = await watch(client, { count: 0, interval_ms: 2_500, tag: 'deadline' }, { deadline });
    expect(r).toMatchObject({ notes: 3, code: grpc.status.DEADLINE_EXCEEDED });
    const end = await callEnd(client, 'deadline');
    expect(Math.abs(Number(end.deadline_ms) - deadline)).toBeLessThan(1_000);
    await until('the app saw the call end', async () => (await callEnd(client, 'deadline')).state === 'cancelled', 3_000);
  }, 30_000);

  test.sequential("a listener's total timeout cuts a stream that keeps making progress, logged as total_timeout", async () => {
    const r = await watch(capped, { count: 0, interval_ms: 300, tag: 'capped' });
    expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(r.code);
    expect(r.ms).toBeGreaterThan(2_500);
    expect(r.ms).toBeLessThan(5_000);
    expect(r.notes).toBeGreaterThan(5);
    await until('the app saw the cancel', async () => (await callEnd(client, 'capped')).state === 'cancelled', 3_000);
    await until('web logged total_timeout', () => accessLines(web).some((l) => l.responseFlags === 'total_timeout' && l.status === 200), 5_000);
    const metrics = await (await fetch(`http://127.0.0.1:${web.admin}/metrics`)).text();
    expect(metrics).toMatch(/tessera_requests_rejected_total\{direction="outbound",reason="total_timeout"\} [1-9]/);
  }, 30_000);
});
