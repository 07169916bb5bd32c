// When the serving proxy cuts an HTTP/2 or gRPC session on purpose (a `tessera revoke` ban of the caller, the drain
// deadline after SIGTERM), every open stream reaches the caller's client as a reset, never as a clean end: an
// HTTP/2 response without content-length gets RST_STREAM (a truncated body never reads as whole), a gRPC call ends
// with UNAVAILABLE (14, what retry policies act on), and the caller's proxy logs each as cut (responseFlags, error,
// grpcStatus 14), not as a clean 200. Before (audit 54c F1, I3), Http2Session.destroy() reset the open streams with
// NO_ERROR: one stream per session ended cleanly at the client (gRPC: INTERNAL, no status), the others CANCELLED.
// Real processes: a control plane, the caller's sidecar (web) and the serving one (api); node:http2 and grpc-js
// clients and apps.
import { readFile, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { StreamsApp, type StreamsClient, streamsClient } from '../../bench/hold/grpc-streams.js';
import { type RunningControlPlane, startControlPlaneProcess, TD, writeControlPlaneConfig } from '../helpers/control-plane.js';
import { type ProxyProcess, startAttestedProxy } from '../helpers/proxy-process.js';
import { makeTempDir, tessera } from '../helpers/run.js';
import { startTrickleH2App, type TrickleH2App } from '../helpers/trickle-h2-app.js';
import { until } from '../helpers/until.js';

const API = `spiffe://${TD}/ns/default/sa/api`;
const WATCH = '/tessera.bench.v1.Streams/Watch';
/** Streams of each kind per test: node:http2 reset one stream per session with NO_ERROR, whichever it was. */
const STREAMS = 3;

let dir: string;
let cleanup: () => Promise<void>;
let cp: RunningControlPlane;
let api: ProxyProcess;
const proxies: ProxyProcess[] = [];
const clients: StreamsClient[] = [];
const sessions: http2.ClientHttp2Session[] = [];
let grpcApp: StreamsApp;
let h2app: TrickleH2App | undefined;

interface AccessLine {
  readonly path?: string;
  readonly status?: number;
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
    'telemetry: { accessLog: api-access.log }\nlimits: { drainTimeout: 1s }\n',
  );
  proxies.push(api);
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sessions) s.destroy();
  for (const p of proxies.reverse()) await p.stop(5_000);
  await cp?.stop();
  grpcApp?.close();
  await h2app?.close();
  await cleanup?.();
});

/** A caller's sidecar with its own identity (sa/`name`), its outbound h2 and gRPC listeners pointed at api. */
async function caller(name: string, extra = ''): Promise<ProxyProcess> {
  const h2 = api.ports.get('inbound/h2')!;
  const g = api.ports.get('inbound/grpc')!;
  const p = await startAttestedProxy(
    cp,
    dir,
    name,
    `spiffe://${TD}/ns/default/sa/${name}`,
    `outbound:\n  - { name: h2, listen: 127.0.0.1:0, upstream: 127.0.0.1:${h2}, spiffeId: ${API}, protocol: http2 }\n  - { name: grpc, listen: 127.0.0.1:0, upstream: 127.0.0.1:${g}, spiffeId: ${API}, protocol: grpc }\n`,
    `telemetry: { accessLog: ${name}-access.log }\n${extra}`,
  );
  proxies.push(p);
  return p;
}

/** How an HTTP/2 stream through the caller ended: `ended` true for a clean end (END_STREAM), and its RST_STREAM code. */
interface H2End {
  readonly bytes: number;
  readonly ended: boolean;
  readonly rstCode: number;
}

/** STREAMS open HTTP/2 downloads on one session to the caller's outbound listener. */
function h2Downloads(port: number, tag: string): { bytes: () => number[]; ends: Promise<H2End[]> } {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  sessions.push(session);
  session.on('error', () => undefined);
  const counts: number[] = [];
  const ends = Array.from({ length: STREAMS }, (_, i) => {
    counts[i] = 0;
    const s = session.request({ ':path': `/${tag}/${i}` });
    s.on('error', () => undefined);
    let ended = false;
    s.on('data', (d: Buffer) => {
      counts[i]! += d.length;
    });
    s.on('end', () => {
      ended = true;
    });
    return new Promise<H2End>((resolve) => s.on('close', () => resolve({ bytes: counts[i]!, ended: ended && s.rstCode === 0, rstCode: s.rstCode ?? -1 })));
  });
  return { bytes: () => counts, ends: Promise.all(ends) };
}

/** STREAMS endless gRPC server streams through the caller; each resolves with its final status code. */
function grpcWatches(port: number): { messages: () => number[]; codes: Promise<{ code: number; details: string }[]> } {
  const client = streamsClient(`127.0.0.1:${port}`);
  clients.push(client);
  const counts: number[] = [];
  const codes = Array.from({ length: STREAMS }, (_, i) => {
    counts[i] = 0;
    const call = client.Watch({ count: 0, interval_ms: 50 });
    call.on('data', () => {
      counts[i]!++;
    });
    return new Promise<{ code: number; details: string }>((resolve) => {
      call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
      call.on('status', (st: grpc.StatusObject) => {
        if (st.code === 0) resolve({ code: 0, details: st.details });
      });
    });
  });
  return { messages: () => counts, codes: Promise.all(codes) };
}

async function accessLines(name: string): Promise<AccessLine[]> {
  const text = await readFile(join(dir, `${name}-access.log`), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AccessLine);
}

/**
 * Opens the streams through `web`, waits for each to flow, cuts (`cutIt`), then checks how each ended and was logged.
 * The serving proxy ends each gRPC call with UNAVAILABLE trailers (`message`), which the caller's relays as its answer.
 */
async function expectCutAsResets(name: string, web: ProxyProcess, message: string, cutIt: () => Promise<void>): Promise<void> {
  const h2 = h2Downloads(web.ports.get('outbound/h2')!, name);
  const calls = grpcWatches(web.ports.get('outbound/grpc')!);
  await until('every stream is flowing', () => h2.bytes().every((b) => b >= 128) && calls.messages().every((m) => m >= 2), 15_000, 50);
  await cutIt();
  const [h2Ends, grpcEnds] = await Promise.all([h2.ends, calls.codes]);
  // Each HTTP/2 download is reset (CANCEL), none ended as if whole.
  expect(h2Ends.map((e) => ({ ended: e.ended, reset: e.rstCode !== 0 }))).toEqual(Array(STREAMS).fill({ ended: false, reset: true }));
  // Each gRPC call ends UNAVAILABLE with a short message, not INTERNAL (no status) or CANCELLED.
  expect(grpcEnds).toEqual(Array(STREAMS).fill({ code: 14, details: message }));
  // The caller's proxy logs each as cut by its upstream.
  await until(`${name}'s access log holds the ${2 * STREAMS} streams`, async () => (await accessLines(name).catch(() => [])).length >= 2 * STREAMS, 10_000, 50);
  const lines = await accessLines(name);
  const h2Lines = lines.filter((l) => l.path?.startsWith(`/${name}/`)).map((l) => ({ responseFlags: l.responseFlags, error: l.error }));
  expect(h2Lines).toEqual(Array(STREAMS).fill({ responseFlags: 'upstream_closed', error: 'upstream_reset' }));
  const grpcLines = lines.filter((l) => l.path === WATCH).map((l) => l.grpcStatus);
  expect(grpcLines).toEqual(Array(STREAMS).fill(14));
}

test('a ban of the caller (tessera revoke id) resets every open HTTP/2 stream and ends every gRPC call UNAVAILABLE', async () => {
  const web = await caller('web');
  await expectCutAsResets('web', web, 'connection cut', async () => {
    const banned = await tessera(['revoke', 'id', '--spiffe-id', `spiffe://${TD}/ns/default/sa/web`, '--data-dir', cp.dataDir]);
    expect(banned.code, banned.stderr).toBe(0);
  });
}, 90_000);

// Audit 62b F1: when the proxy the client talks to drains (its own sidecar, the edge), its cut reset each call with
// CANCEL, which the client read as CANCELLED, its own cancel, and no retry policy retries it.
test('the drain deadline of the caller\'s own proxy (SIGTERM) ends every gRPC call UNAVAILABLE, not CANCELLED, and resets every HTTP/2 download', async () => {
  const web = await caller('web3', 'limits: { drainTimeout: 1s }\n');
  const h2 = h2Downloads(web.ports.get('outbound/h2')!, 'web3');
  const calls = grpcWatches(web.ports.get('outbound/grpc')!);
  // A client-streaming call has no response head yet at the cut: it gets the same status, trailers-only (audit 62j F1).
  const uploader = streamsClient(`127.0.0.1:${web.ports.get('outbound/grpc')!}`);
  clients.push(uploader);
  let uploaded = 0;
  const upload = new Promise<{ code: number; details: string }>((resolve) => {
    const call = uploader.Upload((e) => resolve(e ? { code: e.code, details: e.details } : { code: 0, details: '' }));
    const tick = setInterval(() => {
      if (call.writable) call.write({ text: 'u' }, () => uploaded++);
    }, 50);
    call.on('error', () => clearInterval(tick));
    call.on('status', () => clearInterval(tick));
  });
  await until('every stream is flowing', () => h2.bytes().every((b) => b >= 128) && calls.messages().every((m) => m >= 2) && uploaded >= 2, 15_000, 50);
  expect(await web.stop()).toBe(0);
  expect(await upload).toEqual({ code: 14, details: 'proxy shutting down' });
  const [h2Ends, grpcEnds] = await Promise.all([h2.ends, calls.codes]);
  expect(h2Ends.map((e) => ({ ended: e.ended, reset: e.rstCode !== 0 }))).toEqual(Array(STREAMS).fill({ ended: false, reset: true }));
  expect(grpcEnds).toEqual(Array(STREAMS).fill({ code: 14, details: 'proxy shutting down' }));
  const grpcLines = (await accessLines('web3')).filter((l) => l.path === WATCH).map((l) => ({ grpcStatus: l.grpcStatus, responseFlags: l.responseFlags }));
  const uploadLines = (await accessLines('web3')).filter((l) => l.path?.endsWith('/Upload')).map((l) => ({ grpcStatus: l.grpcStatus, responseFlags: l.responseFlags }));
  expect(uploadLines).toEqual([{ grpcStatus: 14, responseFlags: 'drain_timeout' }]);
  expect(grpcLines).toEqual(Array(STREAMS).fill({ grpcStatus: 14, responseFlags: 'drain_timeout' }));
}, 90_000);

test('the drain deadline of the serving proxy (SIGTERM) resets every open HTTP/2 stream and ends every gRPC call UNAVAILABLE', async () => {
  const web = await caller('web2');
  await expectCutAsResets('web2', web, 'proxy shutting down', async () => {
    expect(await api.stop()).toBe(0);
  });
  // The serving proxy logged each stream it cut at its deadline.
  const cut = (await accessLines('api')).filter((l) => l.responseFlags === 'drain_timeout');
  expect(cut.length).toBe(2 * STREAMS);
}, 90_000);

