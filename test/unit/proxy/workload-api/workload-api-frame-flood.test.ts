// The Workload API socket's bound on a connection's control traffic (audit 53a F2: 157 M WINDOW_UPDATE frames in
// 9 s on the 0666 socket, uncut, the sidecar at 82 % of a core), on a real server and socket: a raw local client's
// flood is cut with GOAWAY ENHANCE_YOUR_CALM and reported through onRejected; a workload's grpc-js client holding
// FetchX509SVID open through 300 rotations, with keepalive PINGs every 100 ms, is never cut. Request messages begun
// and never finished (audit 55c F1, on the control plane's port): past 2 x 20 KiB on a connection the stream is
// refused, the others reset at the message deadline, both reported.
import * as http2 from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, expect, test } from 'vitest';
import type { WorkloadIdentity, WorkloadIdentityFeed } from '../../../../proxy/src/workload-api/workload-api-messages.js';
import { WorkloadApiServer } from '../../../../proxy/src/workload-api/workload-api-server.js';
import { systemClock } from '../../../../common/clock.js';
import { realTimers } from '../../../../shared-io/timers.js';
import { h2Frame } from '../../../helpers/raw-h2-app.js';
import { floodUntilCut, rawH2Client } from '../../../helpers/raw-h2-client.js';
import { REPO_ROOT, makeTempDir } from '../../../helpers/run.js';
import { TestCa } from '../../../helpers/test-ca.js';
import { until } from '../../../helpers/until.js';

const ID = 'spiffe://example.org/ns/default/sa/api';

let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let server: WorkloadApiServer;
let identities: WorkloadIdentity[];
let current = 0;
const listeners = new Set<() => void>();
const rejected: string[] = [];
const feed: WorkloadIdentityFeed = {
  current: () => identities[current],
  subscribe: (l) => {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

beforeEach(async () => {
  tmp = await makeTempDir();
  const ca = await TestCa.create();
  // Two SVIDs taking turns: every rotation pushes a complete new state (chain, key, bundle) to the open stream.
  identities = await Promise.all(
    [0, 1].map(async () => {
      const svid = await ca.mintSvid(ID);
      return { spiffeId: ID, trustDomain: ca.trustDomain, chainDer: svid.chain.map((c) => c.raw), keyPkcs8Der: svid.key.privateKey.export({ type: 'pkcs8', format: 'der' }), bundles: new Map([[ca.trustDomain, [ca.root.cert.raw]]]) };
    }),
  );
  rejected.length = 0;
  server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: join(tmp.dir, 'wl.sock'), feed, onRejected: (r) => rejected.push(r) });
});

afterEach(async () => {
  await server.close();
  await tmp.cleanup();
});

test('a WINDOW_UPDATE flood on the socket: GOAWAY ENHANCE_YOUR_CALM, reported once as http2_flood, the connection closed', async () => {
  const s = connect(server.socketPath);
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  const raw = rawH2Client(s);
  await floodUntilCut(raw, h2Frame(8, 0, 0, Buffer.from([0, 0, 0, 1])), 500, 6_000);
  expect(raw.goaways[0]).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  await until('the connection closed', () => raw.closed, 5_000, 20);
  expect(rejected).toEqual(['http2_flood']);
}, 20_000);

test('a workload holding FetchX509SVID open through 300 rotations, PINGing every 100 ms: never cut', async () => {
  const def = protoLoader.loadSync('spiffe/workload/workload.proto', { includeDirs: [join(REPO_ROOT, 'proto')], keepCase: true });
  const Api = (grpc.loadPackageDefinition(def) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  const client = new Api(`unix://${server.socketPath}`, grpc.credentials.createInsecure(), { 'grpc.keepalive_time_ms': 100, 'grpc.keepalive_permit_without_calls': 1 });
  try {
    const md = new grpc.Metadata();
    md.set('workload.spiffe.io', 'true');
    const stream = (client as unknown as { FetchX509SVID(req: object, md: grpc.Metadata): grpc.ClientReadableStream<unknown> }).FetchX509SVID({}, md);
    let got = 0;
    let failed: unknown;
    stream.on('data', () => void got++);
    stream.on('error', (e) => {
      failed = e;
    });
    await until('the first state', () => got === 1, 5_000, 5);
    for (let i = 1; i <= 300; i++) {
      current = i % 2;
      for (const l of listeners) l();
      await until(`rotation ${i} pushed`, () => got === i + 1 || failed !== undefined, 5_000, 1);
    }
    // PINGs only, across a few sweeps.
    await new Promise((r) => setTimeout(r, 2_500));
    current = 0;
    for (const l of listeners) l();
    await until('the last rotation pushed', () => got === 302 || failed !== undefined, 5_000, 5);
    expect(failed).toBeUndefined();
    expect(rejected).toEqual([]);
    stream.cancel();
  } finally {
    client.close();
  }
}, 60_000);

test('request messages left unfinished on the socket: past 2 x 20 KiB refused (REFUSED_STREAM), the rest reset at the deadline (CANCEL), both reported', async () => {
  await server.close();
  server = await WorkloadApiServer.start({ timers: realTimers, nowMs: systemClock.nowMs, socketPath: join(tmp.dir, 'wl2.sock'), feed, limits: { messageTimeoutMs: 1_000 }, onRejected: (r) => rejected.push(r) });
  const session = http2.connect('http://localhost', { createConnection: () => connect(server.socketPath) });
  session.on('error', () => undefined);
  const codes: number[] = [];
  try {
    // Three messages declaring 16,000 bytes, 15,000 sent of each: two fit under 40,960 held.
    const part = Buffer.alloc(15_005, 0x0a);
    part.writeUInt32BE(16_000, 1);
    for (let i = 0; i < 3; i++) {
      const st = session.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/ValidateJWTSVID', 'content-type': 'application/grpc', te: 'trailers', 'workload.spiffe.io': 'true' });
      st.on('error', () => undefined);
      st.once('close', () => codes.push(st.rstCode ?? 0));
      st.write(part);
    }
    await until('every stream reset', () => codes.length === 3, 10_000, 20);
  } finally {
    session.destroy();
  }
  const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;
  expect(codes).toEqual([NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_CANCEL]);
  expect(rejected).toEqual(['message_bytes', 'message_timeout', 'message_timeout']);
}, 20_000);
