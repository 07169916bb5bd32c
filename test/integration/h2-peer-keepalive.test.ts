// A serving proxy that freezes (SIGSTOP: no byte, no RST, as a host gone) under open HTTP/2 and gRPC streams: the
// caller's proxy PINGs its quiet HTTP/2 sessions to it as the multiplexed transport does (transport.keepalive*),
// and cuts each whose PING goes unanswered, as a cut hop: every gRPC call ends UNAVAILABLE, every HTTP/2 download
// is reset, each logged upstream_closed/upstream_reset and counted as a keepalive end; once the peer is back, the
// next call gets a new session and is served. Before (audit 54c), those streams hung for as long as the peer was
// frozen, for ever if its host was gone. Real processes: a control plane, the caller's sidecar (web) and the
// serving one (api); node:http2 and grpc-js clients and apps.
import { readFile, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { StreamsApp, type StreamsClient, streamsClient } from '../../bench/hold/grpc-streams.js';
import { type RunningControlPlane, TD, startControlPlaneProcess, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { metricsText, sumSeries } from '../helpers/prom-metrics.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { startTrickleH2App, type TrickleH2App } from '../helpers/trickle-h2-app.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WATCH = '/tessera.bench.v1.Streams/Watch';
const CALLS = 2;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let api: ProxyProcess;
let web: ProxyProcess;
const clients: StreamsClient[] = [];
const sessions: http2.ClientHttp2Session[] = [];
let grpcApp: StreamsApp;
let h2app: TrickleH2App | undefined;

interface AccessLine {
  readonly path?: string;
  readonly grpcStatus?: number;
  readonly responseFlags?: string;
  readonly error?: string;
}

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
  h2app = await startTrickleH2App();
  grpcApp = new StreamsApp();
  const grpcPort = await grpcApp.start();
  const cpDir = join(dir, 'cp');
  cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir));
  await writeFile(
    join(cp.policiesDir, 'api.yaml'),
    `apiVersion: tessera.dev/v1\nkind: AuthorizationPolicy\nmetadata: { name: api-allow-default }\nspec:\n  selector: ${API}\n  action: ALLOW\n  rules:\n    - from: ["spiffe://${TD}/ns/default/sa/*"]\n`,
  );
  api = await startAttestedProxy(
    cp,
    dir,
    'api',
    API,
    `inbound:\n  - { name: h2, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${h2app.port}, protocol: http2 }\n  - { name: grpc, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:${grpcPort}, protocol: grpc }\n`,
  );
  web = await startAttestedProxy(
    cp,
    dir,
    'web',
    `spiffe://${TD}/ns/default/sa/web`,
    `outbound:\n  - { name: h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/h2')!}, spiffeId: ${API}, protocol: http2 }\n  - { name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${api.ports.get('inbound/grpc')!}, spiffeId: ${API}, protocol: grpc }\n`,
    // The shortest keepalive there is: a frozen peer is found within about 1 + 2 s and the 1 s sweep.
    'telemetry: { accessLog: web-access.log }\ntransport: { keepaliveInterval: 1s, keepaliveTimeout: 2s }\n',
  );
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sessions) s.destroy();
  await web?.stop(5_000);
  await api?.stop(5_000);
  await cp?.stop();
  grpcApp?.close();
  await h2app?.close();
  await cleanup?.();
});

async function accessLines(): Promise<AccessLine[]> {
  const text = await readFile(join(dir, 'web-access.log'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AccessLine);
}

test('a frozen serving proxy: the caller cuts its HTTP/2 sessions to it for an unanswered PING, each stream fails as a cut hop, and the next call is served', async () => {
  // CALLS endless gRPC server streams and one endless HTTP/2 download through the caller.
  const client = streamsClient(`127.0.0.1:${web.ports.get('outbound/grpc')!}`);
  clients.push(client);
  const messages: number[] = [];
  const ends: ({ code: number; details: string } | undefined)[] = [];
  for (let i = 0; i < CALLS; i++) {
    messages[i] = 0;
    const call = client.Watch({ count: 0, interval_ms: 50 });
    call.on('data', () => messages[i]!++);
    call.on('error', (e: grpc.ServiceError) => (ends[i] = { code: e.code, details: e.details }));
    call.on('status', (st: grpc.StatusObject) => (ends[i] ??= { code: st.code, details: st.details }));
  }
  const session = http2.connect(`http://127.0.0.1:${web.ports.get('outbound/h2')!}`);
  sessions.push(session);
  session.on('error', () => undefined);
  const download = session.request({ ':path': '/download' });
  download.on('error', () => undefined);
  let bytes = 0;
  let cleanEnd = false;
  let closed = false;
  download.on('data', (d: Buffer) => (bytes += d.length));
  download.on('end', () => (cleanEnd = download.rstCode === 0));
  download.on('close', () => (closed = true));
  await until('every stream is flowing', () => bytes >= 128 && messages.every((m) => m >= 2), 15_000, 50);

  process.kill(api.child.pid!, 'SIGSTOP');
  try {
    // Bounded: keepalive 1 s + 2 s and the sweep; on the old code the streams never end.
    await until('every stream through the frozen peer ended', () => closed && ends.filter((e) => e !== undefined).length === CALLS, 30_000, 100);
  } finally {
    process.kill(api.child.pid!, 'SIGCONT');
  }
  expect(ends).toEqual(Array(CALLS).fill({ code: 14, details: 'upstream reset' }));
  expect({ cleanEnd, reset: (download.rstCode ?? 0) !== 0 }).toEqual({ cleanEnd: false, reset: true });

  // One keepalive cut per listener's session (h2 and grpc), counted with the multiplexed transport's.
  const metrics = await metricsText(web.admin);
  expect(sumSeries(metrics, 'tessera_mux_sessions_ended_total', { direction: 'outbound', reason: 'keepalive' })).toBe(2);
  await until('the access log holds the cut streams', async () => (await accessLines().catch(() => [])).length >= CALLS + 1, 10_000, 50);
  const lines = await accessLines();
  expect(lines.filter((l) => l.path === WATCH).map((l) => ({ grpcStatus: l.grpcStatus, responseFlags: l.responseFlags, error: l.error }))).toEqual(
    Array(CALLS).fill({ grpcStatus: 14, responseFlags: 'upstream_closed', error: 'upstream_reset' }),
  );
  expect(lines.filter((l) => l.path === '/download').map((l) => ({ responseFlags: l.responseFlags, error: l.error }))).toEqual([{ responseFlags: 'upstream_closed', error: 'upstream_reset' }]);

  // The peer is back: the next call goes on a new session and is served in full.
  const next = await new Promise<{ code: number; messages: number }>((resolve) => {
    let n = 0;
    const call = client.Watch({ count: 3, interval_ms: 10 });
    call.on('data', () => n++);
    call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, messages: n }));
    call.on('status', (st: grpc.StatusObject) => {
      if (st.code === 0) resolve({ code: 0, messages: n });
    });
  });
  expect(next).toEqual({ code: 0, messages: 3 });
}, 90_000);
