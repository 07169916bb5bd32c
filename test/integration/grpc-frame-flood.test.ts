// Control-frame floods on the HTTP/2 servers grpc-js runs for Tessera (audit 53a F2): the control plane's gRPC port,
// which a TLS client reaches without any certificate, and a proxy's Workload API socket, which any local uid
// reaches. Before, 171 M WINDOW_UPDATE frames in 9 s on one connection were never cut (the control plane at 78 % of a
// core, its SignSvid answers twice as slow) and nothing counted them. Now every kind of frame that asks for no
// answer and carries no request closes the connection within seconds and is counted: WINDOW_UPDATE (connection,
// open call, finished call) and empty DATA by the shared control-traffic budget (GOAWAY ENHANCE_YOUR_CALM), PING,
// SETTINGS, PRIORITY, RST_STREAM and empty CONTINUATION by nghttp2's own limits, now counted too (PRIORITY and
// RST_STREAM floods are reported by node:http2 as protocol errors). The servers answer others meanwhile, and
// well-behaved grpc-js clients (a Config/Watch with many pushes, SignSvid after SignSvid, keepalive PINGs, a real
// proxy's own stream) are never cut. Real processes, raw frames over real sockets, on loopback.
import { readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SIGN_SVID_PATH } from '../../common/contract/identity-v1.js';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import { controlPlaneClients, createJoinToken, joinTokenSvid, type RunningControlPlane, signSvid, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { h2Frame as frame, hpackBlock } from '../helpers/raw-h2-app.js';
import { floodUntilCut, type RawH2Conn, rawH2Client } from '../helpers/raw-h2-client.js';
import { makeTempDir } from '../helpers/run.js';
import { collectStream } from '../helpers/stream-collector.js';
import { until } from '../helpers/until.js';
import { connectWorkloadApi } from '../helpers/workload-api-client.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
const [DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, WINDOW_UPDATE, CONTINUATION] = [0, 1, 2, 3, 4, 6, 8, 9];
const [END_STREAM, END_HEADERS] = [0x1, 0x4];
const ENHANCE_YOUR_CALM = 0xb;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let api: ProxyProcess;
let bundlePem: string;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  // SignSvid after SignSvid for one ID (the well-behaved client below) is not what the rate limit is tested on here.
  cp = await startControlPlaneProcess(dir, await writeControlPlaneConfig(dir, 'svid: { rateLimit: { burst: 1000, perMinute: 60000 } }'));
  bundlePem = await readFile(join(cp.dataDir, 'bundle.pem'), 'utf8');
  api = await startAttestedProxy(cp, dir, 'api', API, 'workloadApi: { socket: api.sock }\n');
}, 90_000);

afterAll(async () => {
  await api?.stop();
  await cp?.stop();
  await cleanup?.();
});

const SURFACES = [
  {
    name: 'control plane gRPC port (TLS, no client certificate)',
    path: SIGN_SVID_PATH,
    connect: () => tls.connect({ host: '127.0.0.1', port: Number(cp.grpc.split(':')[1]), ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'tessera-control-plane' }),
    ready: 'secureConnect',
    rejected: async (reason: string) => sumSeries(await (await fetch(`http://${cp.admin}/metrics`)).text(), 'tessera_grpc_requests_rejected_total', { reason }),
  },
  {
    name: 'Workload API socket',
    path: '/SpiffeWorkloadAPI/FetchX509SVID',
    connect: () => net.connect(join(dir, 'api.sock')),
    ready: 'connect',
    rejected: async (reason: string) => sumSeries(await metricsText(api.admin), 'tessera_requests_rejected_total', { direction: 'workload_api', reason }),
  },
];
type Surface = (typeof SURFACES)[number];

/** A raw HTTP/2 client on `s` (rawH2Client), once connected. */
async function rawOpen(s: Surface): Promise<RawH2Conn> {
  const socket = s.connect();
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once(s.ready, () => resolve());
    socket.once('error', reject);
  });
  return rawH2Client(socket);
}

const callHead = (s: Surface) => hpackBlock([[':method', 'POST'], [':scheme', 'http'], [':path', s.path], [':authority', 'x'], ['content-type', 'application/grpc'], ['te', 'trailers']]);

const increment = Buffer.from([0, 0, 0, 1]);
/** Each kind: what opens the flood (a call left open, a finished call, a header block begun) and the frame repeated. */
const FAMILY = [
  { kind: 'WINDOW_UPDATE +1 on the connection', reason: 'http2_flood', calm: true, open: () => Buffer.alloc(0), unit: frame(WINDOW_UPDATE, 0, 0, increment) },
  { kind: 'WINDOW_UPDATE +1 on an open call', reason: 'http2_flood', calm: true, open: (s: Surface) => frame(HEADERS, END_HEADERS, 1, callHead(s)), unit: frame(WINDOW_UPDATE, 0, 1, increment) },
  { kind: 'WINDOW_UPDATE +1 on a finished call', reason: 'http2_flood', calm: true, open: (s: Surface) => frame(HEADERS, END_HEADERS | END_STREAM, 1, callHead(s)), unit: frame(WINDOW_UPDATE, 0, 1, increment) },
  { kind: 'empty DATA on an open call', reason: 'http2_flood', calm: false, open: (s: Surface) => frame(HEADERS, END_HEADERS, 1, callHead(s)), unit: frame(DATA, 0, 1) },
  { kind: 'RST_STREAM on a finished call', reason: 'http2_protocol_error', calm: false, open: (s: Surface) => frame(HEADERS, END_HEADERS | END_STREAM, 1, callHead(s)), unit: frame(RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])) },
  // nghttp2 closes on more than 1,000 answers queued unsent: 2,000 in one write queue them whatever the socket.
  { kind: 'PING', reason: 'http2_flood', calm: false, open: () => Buffer.alloc(0), unit: frame(PING, 0, 0, Buffer.alloc(8)), per: 2_000 },
  { kind: 'SETTINGS', reason: 'http2_flood', calm: false, open: () => Buffer.alloc(0), unit: frame(SETTINGS, 0, 0), per: 2_000 },
  { kind: 'PRIORITY', reason: 'http2_protocol_error', calm: false, open: () => Buffer.alloc(0), unit: frame(PRIORITY, 0, 3, Buffer.from([0, 0, 0, 1, 16])) },
  { kind: 'empty CONTINUATION', reason: 'http2_flood', calm: false, open: () => frame(HEADERS, 0, 1, hpackBlock([[':method', 'POST']])), unit: frame(CONTINUATION, 0, 1) },
];

describe.each(SURFACES)('$name', (s) => {
  test.each(FAMILY)('$kind: the connection is closed and counted as $reason', async (f) => {
    const before = await s.rejected(f.reason);
    const c = await rawOpen(s);
    c.socket.write(f.open(s));
    await floodUntilCut(c, f.unit, f.per);
    await until('the connection closed', () => c.closed, 10_000, 20);
    // Those cut by the budget hear why first; nghttp2's own closes end with whatever Node sends.
    if (f.calm) expect(c.goaways[0]).toBe(ENHANCE_YOUR_CALM);
    await until(`the cut counted as ${f.reason}`, async () => (await s.rejected(f.reason)) === before + 1, 5_000).catch(async (e) => {
      throw new Error(`${(e as Error).message}; flood ${await s.rejected('http2_flood')} protocol ${await s.rejected('http2_protocol_error')} before ${before}`);
    });
    c.socket.destroy();
  }, 30_000);
});

test('control plane: a SignSvid is answered while a client without a certificate floods WINDOW_UPDATE', async () => {
  const c = await rawOpen(SURFACES[0]!);
  const flooding = floodUntilCut(c, frame(WINDOW_UPDATE, 0, 0, increment));
  const client = controlPlaneClients(cp.grpc, bundlePem);
  try {
    const r = await signSvid(client.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: await createJoinToken(cp.dataDir, WEB) });
    expect(r.err).toBeNull();
    expect(r.res?.spiffe_id).toBe(WEB);
  } finally {
    client.close();
  }
  await flooding;
  expect(c.goaways[0]).toBe(ENHANCE_YOUR_CALM);
  c.socket.destroy();
}, 30_000);

test('Workload API: a workload is answered while another local process floods WINDOW_UPDATE', async () => {
  const c = await rawOpen(SURFACES[1]!);
  const flooding = floodUntilCut(c, frame(WINDOW_UPDATE, 0, 0, increment));
  const wl = connectWorkloadApi(join(dir, 'api.sock'));
  try {
    const { err, res } = await wl.fetchJwt({ audience: ['svc'] });
    expect(err).toBeNull();
    expect(res.svids[0]?.spiffe_id).toBe(API);
  } finally {
    wl.client.close();
  }
  await flooding;
  expect(c.goaways[0]).toBe(ENHANCE_YOUR_CALM);
  c.socket.destroy();
}, 30_000);

const POLICY = (i: number) =>
  ['apiVersion: tessera.dev/v1', 'kind: AuthorizationPolicy', `metadata: { name: web-${i} }`, 'spec:', `  selector: ${WEB}`, '  action: ALLOW', '  rules:', `    - from: [${Array.from({ length: 20 }, (_, k) => `spiffe://${TD}/ns/team-${i}/sa/caller-${k}`).join(', ')}]`, ''].join('\n');

test('control plane: well-behaved grpc-js clients (a Config/Watch with 40 pushes, 40 SignSvid calls, keepalive PINGs every 200 ms) are never cut', async () => {
  const flooded = async () => (await SURFACES[0]!.rejected('http2_flood')) + (await SURFACES[0]!.rejected('http2_protocol_error'));
  const before = await flooded();
  const svid = await joinTokenSvid(cp, bundlePem, WEB);
  const client = controlPlaneClients(cp.grpc, bundlePem, svid, { 'grpc.keepalive_time_ms': 200, 'grpc.keepalive_permit_without_calls': 1 });
  try {
    const watch = collectStream(client.config.Watch!({}) as grpc.ClientReadableStream<{ policies: unknown[] }>);
    await watch.next(() => true);
    for (let i = 0; i < 40; i++) {
      await writeFile(join(cp.policiesDir, `web-${i}.yaml`), POLICY(i));
      // One push per policy: the next file is written once the last one has arrived.
      await watch.next((m) => m.policies.length === i + 1, { timeoutMs: 15_000 });
      const r = await signSvid(client.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: await createJoinToken(cp.dataDir, WEB) });
      expect(r.err).toBeNull();
    }
    // PINGs only for a few sweeps.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(watch.ended()).toBeUndefined();
    const r = await signSvid(client.identity, { csr: await createCsr(generateKeyPair(), {}), join_token: await createJoinToken(cp.dataDir, WEB) });
    expect(r.err).toBeNull();
    watch.cancel();
  } finally {
    client.close();
  }
  // The proxy's own Config/Watch connection was never cut either.
  expect(await flooded()).toBe(before);
}, 120_000);
