// The caller's sidecar drains (SIGTERM) with tunnels open through both of its tunnel kinds — a CONNECT tunnel of
// its forward proxy (`mode: http-proxy`) and a connection of its `service:` tcp listener — and cuts them at its
// drain deadline: each is reset on both legs, so the app behind the replica's proxy sees a reset, not the end of
// an upload it would commit, and the caller logs each (responseFlags drain_timeout) before it exits (audit 38a F1,
// F2). Real processes: control plane (discovery), one replica's proxy in front of a sink app, the caller.
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { API_ID, Mesh, SERVICE_TCP } from '../helpers/mesh-replicas.js';
import { makeTempDir } from '../helpers/run.js';
import { until } from '../helpers/until.js';
import { sinkUpload } from '../helpers/upload-sink.js';

let mesh: Mesh;
let cleanup: () => Promise<void>;
let app: net.Server;
/** How each app connection ended, by its first line: 'end' (it would commit the upload) or 'reset'. */
const appEnds = new Map<string, string>();
/** Bytes each app connection received, by its first line. */
const appBytes = new Map<string, number>();

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = await makeTempDir());
  // Reads to its end of input, as a "read to EOF, then commit" server does.
  app = net.createServer({ allowHalfOpen: true }, (s) => sinkUpload(s, (d) => d.toString('latin1').split('\n')[0]!, appEnds, appBytes));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  mesh = await Mesh.start(dir, { replicas: 0, tcp: true, clientTail: 'limits: { drainTimeout: 1s }\n' });
  // The replica: its tcp listener registers itself in SERVICE_TCP and forwards to the sink.
  const host = '127.0.0.2';
  await mesh.startProxy(
    'sink',
    API_ID,
    `inbound:\n  - { name: tcp, listen: ${host}:${await freePort(host)}, forwardTo: 127.0.0.1:${(app.address() as net.AddressInfo).port}, protocol: tcp, service: ${SERVICE_TCP} }\n`,
  );
  await until('the caller knows the TCP endpoint', async () => (await mesh.endpoints('api-tcp')).length === 1, 30_000);
}, 120_000);

afterAll(async () => {
  await mesh?.close();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  await cleanup?.();
});

/**
 * An upload through `port` (after `head`, a CONNECT request, if given) that never finishes: its first line, then 4
 * KiB. Resolves once the app has it all, with how the client's side ends: `error <code>` or `end`.
 */
async function openUpload(port: number, tag: string, head = ''): Promise<{ outcome: Promise<string>; socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('data', () => undefined);
  const outcome = new Promise<string>((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
  });
  await new Promise((r) => socket.once('connect', r));
  const body = Buffer.concat([Buffer.from(`${tag}\n`), Buffer.alloc(4096, 0x61)]);
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  await until(`the app has ${tag}'s first bytes`, () => appBytes.get(tag) === body.length, 10_000, 20);
  return { outcome, socket };
}

test('SIGTERM on the caller: a CONNECT tunnel and a service tcp connection cut at its drain deadline are reset on both legs and logged drain_timeout', async () => {
  const connect = await openUpload(mesh.port('mesh'), 'via-connect', `CONNECT ${SERVICE_TCP}:9000 HTTP/1.1\r\nHost: ${SERVICE_TCP}:9000\r\n\r\n`);
  const tcp = await openUpload(mesh.port('api-tcp'), 'via-service');
  expect(await mesh.client.stop()).toBe(0);
  // Before 2026-12-06 the caller reset its client's leg only: the replica's proxy got a FIN and passed it on, and
  // the app took each half-sent upload as complete.
  await until('the app saw how both ended', () => appEnds.has('via-connect') && appEnds.has('via-service'), 10_000, 20);
  expect(Object.fromEntries(appEnds)).toEqual({ 'via-connect': 'reset', 'via-service': 'reset' });
  expect(await connect.outcome).toBe('error ECONNRESET');
  expect(await tcp.outcome).toBe('error ECONNRESET');
  connect.socket.destroy();
  tcp.socket.destroy();
  // Before 2026-12-06 the caller closed its access log before these records were written: no line, no count.
  const lines = (await readFile(mesh.accessLogFile, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.protocol === 'tcp');
  expect(lines).toHaveLength(2);
  expect(lines.find((l) => l.method === 'CONNECT')).toMatchObject({ direction: 'outbound', path: `${SERVICE_TCP}:9000`, responseFlags: 'drain_timeout' });
  expect(lines.find((l) => l.method === undefined)).toMatchObject({ direction: 'outbound', responseFlags: 'drain_timeout' });
}, 60_000);
